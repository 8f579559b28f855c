// Small, deterministic files of every kind in schemas/, written through the same writers the
// tools use. Tests use them to prove that each schema has a writer whose output conforms to it
// and that foreign readers (h5py + hdf5plugin) read exactly what was written; the demo uses
// them to show shard-inspect.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bellows::io {

// Every kind a sample can be written for.
std::vector<std::string> sample_kinds();

// Writes a sample file of `kind` to `path`. Returns what was written:
// {"kind": ..., "attrs": {name: value}, "datasets": {name: {"dtype", "shape", "values" (flat)}}}.
// Throws InternalError for a kind that has no sample writer.
nlohmann::json write_sample_shard(const std::string& kind, const std::string& path, uint64_t seed);

}  // namespace bellows::io
