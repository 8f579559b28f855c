// The copy of the data's tokenizer a run directory keeps (RUNDIR/tokenizer/), so that
// lm-generate, ckpt-convert and later stages find it without being told: pretrain writes it,
// checkpoint_tokenizer reads it back.
#pragma once

#include <optional>
#include <string>

#include "tok/tokenizer.hpp"

namespace bellows::train {

// Finds the tokenizer whose SHA-256 is `sha256`: `explicit_path` when given (UsageError if it is
// another tokenizer), else DATA/tokenizer.json, else the path DATA/report.json records. Copies
// it (with a tokenizer_config.json beside it) into RUNDIR/tokenizer/ and writes
// RUNDIR/tokenizer/bellows_tokenizer.json: the file name, its hash, and how tokenize-pack loaded
// it (pattern, special tokens, EOS/BOS names). Warns and copies nothing when none is found.
void copy_tokenizer_into_run(const std::string& run_dir, const std::string& data_dir, const std::string& explicit_path,
                             const std::string& sha256);

// The run directory of a checkpoint directory (or of its model.h5): its grandparent.
std::string run_dir_of_checkpoint(const std::string& ckpt);

// The tokenizer that goes with a checkpoint: --tokenizer PATH when given, else the copy its run
// directory keeps (RUNDIR/tokenizer/, written by pretrain; RUNDIR is the grandparent of
// RUNDIR/checkpoints/step-N). RUNDIR/tokenizer/bellows_tokenizer.json names the file and how
// tokenize-pack loaded it (pattern, special tokens, EOS/BOS names); those settings apply to an
// explicit --tokenizer too, since it must be the same file. A tokenizer whose SHA-256 differs
// from the checkpoint's is refused.
//
// ckpt: a resolved checkpoint (directory or model.h5); sha256: the checkpoint's
// tokenizer_sha256. Returns nullopt when no --tokenizer is given and the run directory keeps
// none. Throws UsageError naming both files when the tokenizer is another one, or naming
// bellows_tokenizer.json when its settings are unusable.
std::optional<tok::Tokenizer> checkpoint_tokenizer(const std::string& ckpt, const std::string& explicit_path,
                                                   const std::string& sha256);

}  // namespace bellows::train
