// --dump-logits: {"ids": [...], "logits": [[V floats] per position]} written atomically (a
// hidden temporary renamed into place), for comparing a model with another implementation
// position by position.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/safe_output.hpp"

namespace bellows::gen {

// Writes into out's temporary and commits it; the caller opens `out` before the model runs, so
// that an existing file without --overwrite is refused before any work. logits: [ids.size(), V].
// Floats are written in their shortest form that reads back to the same float; a non-finite
// value (not JSON) is written as null. Throws RuntimeError naming the file when it cannot be
// written.
void write_logits_json(io::SafeOutput& out, const std::vector<int32_t>& ids, const std::vector<float>& logits, int V);

}  // namespace bellows::gen
