#include "core/read_file.hpp"

#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace bellows {

std::optional<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json_file(const std::string& path) {
  auto text = read_whole_file(path);
  if (!text) throw UsageError(path + ": cannot be read");
  try {
    return nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace bellows
