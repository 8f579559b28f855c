// Whole small files (tokenizers, configs, reports) read in one go.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace bellows {

// The file's bytes, or nullopt when it cannot be opened.
std::optional<std::string> read_whole_file(const std::string& path);

// A JSON file; UsageError "PATH: cannot be read" or "PATH: not valid JSON: ..." otherwise.
nlohmann::json read_json_file(const std::string& path);

}  // namespace bellows
