// The generation loop: prefill the prompt into an empty KV cache (several positions per pass),
// then one token at a time until EOS, the token budget, or the end of the cache.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "gen/kv_model.hpp"
#include "gen/sampler.hpp"

namespace bellows::gen {

enum class StopReason { eos, max_new_tokens, context_full };
const char* to_string(StopReason r);

struct Generated {
  std::vector<uint32_t> ids;  // the new tokens, EOS excluded
  StopReason stop = StopReason::max_new_tokens;
  double prefill_s = 0, decode_s = 0;
};

// prompt: at least one id. on_token (may be empty) sees each new token as it is drawn (not
// EOS), for streaming. Polls for SIGINT/SIGTERM between tokens.
Generated generate(KvCacheModel& m, const std::vector<int32_t>& prompt, int max_new_tokens,
                   std::optional<uint32_t> eos, Sampler& sampler, const std::function<void(uint32_t)>& on_token = {});

}  // namespace bellows::gen
