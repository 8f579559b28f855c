// Test helper: writes one sample file of every kind in schemas/ (through libshared's writers)
// plus <kind>.expected.json describing exactly what was written, for foreign readers to check.
//   write-sample-shards OUTDIR [SEED]
#include <cstdio>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "io/sample_shards.hpp"
#include "io/schema.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: write-sample-shards OUTDIR [SEED]\n");
    return 2;
  }
  std::string dir = argv[1];
  uint64_t seed = argc == 3 ? std::stoull(argv[2]) : 42;
  try {
    for (const auto& kind : bellows::schema::names()) {
      nlohmann::json expected = bellows::io::write_sample_shard(kind, dir + "/" + kind + ".h5", seed);
      std::ofstream(dir + "/" + kind + ".expected.json") << expected.dump() << "\n";
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write-sample-shards: %s\n", e.what());
    return 1;
  }
  return 0;
}
