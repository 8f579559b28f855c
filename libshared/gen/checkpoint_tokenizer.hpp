// The tokenizer that goes with a checkpoint: --tokenizer PATH when given, else the copy its run
// directory keeps (RUNDIR/tokenizer/, written by pretrain; RUNDIR is the grandparent of
// RUNDIR/checkpoints/step-N). RUNDIR/tokenizer/bellows_tokenizer.json names the file and how
// tokenize-pack loaded it (pattern, special tokens, EOS/BOS names); those settings apply to an
// explicit --tokenizer too, since it must be the same file. A tokenizer whose SHA-256 differs
// from the checkpoint's is refused.
#pragma once

#include <optional>
#include <string>

#include "tok/tokenizer.hpp"

namespace bellows::gen {

// The run directory of a checkpoint directory (or of its model.h5): its grandparent.
std::string run_dir_of_checkpoint(const std::string& ckpt);

// ckpt: a resolved checkpoint (directory or model.h5); sha256: the checkpoint's
// tokenizer_sha256. Returns nullopt when no --tokenizer is given and the run directory keeps
// none. Throws UsageError naming both files when the tokenizer is another one, or naming
// bellows_tokenizer.json when its settings are unusable.
std::optional<tok::Tokenizer> checkpoint_tokenizer(const std::string& ckpt, const std::string& explicit_path,
                                                   const std::string& sha256);

}  // namespace bellows::gen
