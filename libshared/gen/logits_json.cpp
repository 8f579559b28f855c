#include "gen/logits_json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>

#include "core/error.hpp"

namespace bellows::gen {

void write_logits_json(io::SafeOutput& out, const std::vector<int32_t>& ids, const std::vector<float>& logits, int V) {
  BELLOWS_CHECK(logits.size() == ids.size() * size_t(V), "logits of another shape than [ids, V]");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(out.temp_path().c_str(), "wb"), &std::fclose);
  if (!f) throw RuntimeError("--dump-logits: cannot create '" + out.temp_path() + "'");
  // Streamed number by number: [positions, V] can be large for a real vocabulary.
  std::string buf;
  auto flush = [&] {
    if (!buf.empty() && std::fwrite(buf.data(), 1, buf.size(), f.get()) != buf.size())
      throw RuntimeError("--dump-logits: cannot write '" + out.temp_path() + "'");
    buf.clear();
  };
  char num[64];
  buf += "{\"ids\": [";
  for (size_t i = 0; i < ids.size(); ++i) buf += (i ? ", " : "") + std::to_string(ids[i]);
  buf += "],\n\"logits\": [";
  for (size_t p = 0; p < ids.size(); ++p) {
    buf += p ? ",\n[" : "\n[";
    for (int v = 0; v < V; ++v) {
      const float x = logits[p * size_t(V) + size_t(v)];
      if (v) buf += ',';
      if (!std::isfinite(x)) {
        buf += "null";
      } else {
        auto r = std::to_chars(num, num + sizeof num, x);  // shortest round-trip form
        buf.append(num, r.ptr);
      }
    }
    buf += ']';
    if (buf.size() > (1u << 20)) flush();
  }
  buf += "]}\n";
  flush();
  if (std::fclose(f.release()) != 0) throw RuntimeError("--dump-logits: cannot write '" + out.temp_path() + "'");
  out.commit();
}

}  // namespace bellows::gen
