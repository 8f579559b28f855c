// The JSONL records of the sft and preference modes: one JSON object per line.
#pragma once

#include <simdjson.h>

#include <functional>
#include <string>

#include "log/progress.hpp"

namespace bellows::pack {

// Calls `record(doc, where)` for every non-blank line of `path` that is a JSON object (raw invalid
// UTF-8 is replaced by U+FFFD first, as the tokenizer would), and `bad(where, reason)` for a line
// longer than `max_line_bytes` ("line_too_long") or not a JSON object ("not_a_json_object").
// `where` is "path:line". Advances `progress` by the file bytes read.
void for_each_jsonl_object(const std::string& path, size_t max_line_bytes, log::Progress& progress,
                           const std::function<void(simdjson::dom::element doc, const std::string& where)>& record,
                           const std::function<void(const std::string& where, const std::string& reason)>& bad);

}  // namespace bellows::pack
