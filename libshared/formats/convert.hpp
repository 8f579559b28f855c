// ckpt-convert's conversions, each streaming one tensor at a time (a buffer of the largest
// tensor, reused), so a model several times the node's memory converts:
//   export: our checkpoint -> HF directory (safetensors, sharded) or GGUF file;
//   import: HF directory or GGUF file -> a run directory (checkpoints/step-00000000 + tokenizer/)
//           that pretrain --init-from, lm-generate and the other tools take as any run.
// LoRA adapters (PEFT, GGUF LoRA, merged exports, PEFT import) are in lora_export.hpp.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/app.hpp"

namespace bellows::formats {

struct ConvertOptions {
  std::string from, from_hf, from_gguf;  // exactly one
  std::string to;                        // hf | gguf | peft | gguf-lora (export) | bellows | lora (import)
  std::string lora;                      // --lora: an adapter of `from` (lora_export.hpp)
  bool merge = false;                    // --merge: fold it into an hf/gguf export
  std::string lora_from_peft;            // --lora-from-peft DIR: import a PEFT adapter of `from`
  std::string peft_base;                 // --to peft: base_model_name_or_path to record
  std::string output;
  std::string tokenizer;                 // export: the run's tokenizer override
  std::string dtype;                     // f32 (default) | f16 | bf16 | q8_0 (gguf only)
  uint64_t shard_size = 5'000'000'000;   // bytes of tensor data per safetensors shard
  bool dry_run = false, overwrite = false;
  nlohmann::json effective_options = nlohmann::json::object();
};

// "5GB", "500MB", "2GiB", "123" (bytes) -> bytes; UsageError naming `flag` otherwise.
uint64_t parse_byte_size(const std::string& s, const std::string& flag);

// What a conversion did (report.json, and the summary line).
struct ConvertSummary {
  uint64_t tensors = 0, bytes_written = 0, bytes_read = 0;
  double seconds = 0;
};

ConvertSummary export_hf(const ConvertOptions& o);
ConvertSummary export_gguf(const ConvertOptions& o);
ConvertSummary import_hf(const ConvertOptions& o);
ConvertSummary import_gguf(const ConvertOptions& o);

cli::ToolSpec ckpt_convert_tool_spec();

}  // namespace bellows::formats
