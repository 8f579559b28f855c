// SHA-256 (FIPS 180-4), for fingerprints of tokenizers and models: a shard records the hash of
// the tokenizer it was made with, and training refuses shards made with another.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace bellows {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  std::array<uint8_t, 32> digest();
  std::string hex();  // lowercase hex of digest()

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);
// Hash of a file's bytes; throws RuntimeError naming the file.
std::string sha256_file(const std::string& path);

}  // namespace bellows
