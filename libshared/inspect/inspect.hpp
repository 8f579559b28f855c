// shard-inspect: what a bellows HDF5 file is, how it was made, and whether every byte of it
// still reads back (checksums verified chunk by chunk). Under MPI the files are shared out
// across ranks and the results gathered, so a whole shard set is checked in parallel.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/app.hpp"
#include "dist/comm.hpp"

namespace bellows::inspect {

struct DatasetInfo {
  std::string name, dtype;
  std::vector<uint64_t> shape, chunks;
  std::vector<std::string> filters;
  uint64_t bytes = 0, stored_bytes = 0;
};

struct FileReport {
  std::string path;
  bool ok = false;
  std::string error;  // why not ok
  std::string kind;
  int64_t version = 0;
  nlohmann::json attrs = nlohmann::json::object();
  std::vector<DatasetInfo> datasets;
  bool verified = false;  // every chunk read back
};

// Files named by `paths`: files as given, directories expanded to their *.h5 files (sorted).
// Throws UsageError for a path that does not exist or a directory with no .h5 file.
std::vector<std::string> expand_inputs(const std::vector<std::string>& paths);

// Opens `path` (any kind), fills the report; with `verify` reads every chunk. Never throws for
// problems of the file itself: they go into report.error.
FileReport inspect_file(const std::string& path, bool verify);

nlohmann::json to_json(const FileReport& r);
FileReport from_json(const nlohmann::json& j);
std::string to_text(const FileReport& r);

// The tool's spec (options, help) and entry point.
cli::ToolSpec tool_spec();

}  // namespace bellows::inspect
