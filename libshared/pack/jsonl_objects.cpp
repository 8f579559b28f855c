#include "pack/jsonl_objects.hpp"

#include "io/line_reader.hpp"
#include "text/cleanup.hpp"

namespace bellows::pack {

void for_each_jsonl_object(const std::string& path, size_t max_line_bytes, log::Progress& progress,
                           const std::function<void(simdjson::dom::element doc, const std::string& where)>& record,
                           const std::function<void(const std::string& where, const std::string& reason)>& bad) {
  io::LineReader lines(path, max_line_bytes);
  simdjson::dom::parser parser;
  std::string line, fixed;
  uint64_t reported = 0;
  for (;;) {
    auto st = lines.next(line);
    if (st == io::LineReader::Status::eof) break;
    std::string where = path + ":" + std::to_string(lines.line_number());
    if (st == io::LineReader::Status::too_long) {
      bad(where, "line_too_long");
    } else if (line.find_first_not_of(" \t\r") != std::string::npos) {
      if (!text::is_valid_utf8(line)) {
        text::repair_utf8(line, fixed);
        line.swap(fixed);
      }
      line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
      simdjson::dom::element doc;
      if (parser.parse(line.data(), line.size(), false).get(doc) != simdjson::SUCCESS || !doc.is_object())
        bad(where, "not_a_json_object");
      else
        record(doc, where);
    }
    uint64_t now = lines.file_bytes_read();
    progress.add(now - reported);
    reported = now;
  }
}

}  // namespace bellows::pack
