// The copy of the data's tokenizer a run directory keeps (RUNDIR/tokenizer/), so that
// lm-generate, ckpt-convert and later stages find it without being told.
#pragma once

#include <string>

namespace bellows::train {

// Finds the tokenizer whose SHA-256 is `sha256`: `explicit_path` when given (UsageError if it is
// another tokenizer), else DATA/tokenizer.json, else the path DATA/report.json records. Copies
// it (with a tokenizer_config.json beside it) into RUNDIR/tokenizer/ and writes
// RUNDIR/tokenizer/bellows_tokenizer.json: the file name, its hash, and how tokenize-pack loaded
// it (pattern, special tokens, EOS/BOS names). Warns and copies nothing when none is found.
void copy_tokenizer_into_run(const std::string& run_dir, const std::string& data_dir, const std::string& explicit_path,
                             const std::string& sha256);

}  // namespace bellows::train
