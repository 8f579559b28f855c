#include "gen/generate.hpp"

#include <chrono>

#include "core/error.hpp"
#include "core/signals.hpp"

namespace bellows::gen {

const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::eos: return "EOS";
    case StopReason::max_new_tokens: return "--max-new-tokens";
    case StopReason::context_full: return "the end of the context";
  }
  return "?";
}

Generated generate(KvCacheModel& m, const std::vector<int32_t>& prompt, int max_new_tokens,
                   std::optional<uint32_t> eos, Sampler& sampler, const std::function<void(uint32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  BELLOWS_CHECK(!prompt.empty(), "generation needs a prompt of at least one token");
  const int V = int(m.config().vocab_size);
  Generated g;
  std::vector<float> logits;  // [V] of the last position
  m.reset();
  auto t0 = Clock::now();
  m.forward(prompt.data(), int(prompt.size()), /*all_logits=*/false, logits);
  g.prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  while (true) {
    if (int(g.ids.size()) >= max_new_tokens) {
      g.stop = StopReason::max_new_tokens;
      break;
    }
    const uint32_t next = sampler.next(logits.data(), V);
    if (eos && next == *eos) {
      g.stop = StopReason::eos;
      break;
    }
    g.ids.push_back(next);
    if (on_token) on_token(next);
    check_interrupt();
    if (int(g.ids.size()) >= max_new_tokens) continue;  // no forward for a token never used
    if (m.position() >= m.max_len()) {
      g.stop = StopReason::context_full;
      break;
    }
    const int32_t id = int32_t(next);
    m.forward(&id, 1, false, logits);
  }
  g.decode_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return g;
}

}  // namespace bellows::gen
