// A HuggingFace model directory as ckpt-convert reads it: config.json (with the field-name drift
// of transformers releases: torch_dtype or dtype, rope_scaling or v5's rope_parameters) and the
// weights, one model.safetensors or shards listed by model.safetensors.index.json.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/safetensors.hpp"
#include "nn/config.hpp"

namespace bellows::formats {

// Architectures whose weights map onto ours one to one.
const std::vector<std::string>& supported_hf_architectures();

// config.json -> our config. UsageError naming the file for an architecture other than the
// supported ones (listing them) or a field we cannot honour.
nn::LlamaConfig read_hf_config(const std::string& config_json_path);

// Every tensor of a checkpoint directory, each found in its shard.
class HfWeights {
 public:
  // RuntimeError naming the file for a missing or inconsistent index or shard, and for a
  // tensor listed in the index but absent from its shard (or present in two).
  explicit HfWeights(const std::string& dir);
  struct Entry {
    const SafetensorsReader* file;
    const SafetensorsTensor* tensor;
  };
  const Entry* find(const std::string& name) const;
  const std::map<std::string, Entry>& all() const { return entries_; }

 private:
  std::vector<std::unique_ptr<SafetensorsReader>> files_;
  std::map<std::string, Entry> entries_;
};

}  // namespace bellows::formats
