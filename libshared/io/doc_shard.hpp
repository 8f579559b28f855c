// Document shards (schemas/docs.json): the unit curate-dedup writes and tokenize-pack reads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/shard.hpp"

namespace bellows::io {

struct Document {
  std::string id;
  std::string text;    // UTF-8
  std::string source;  // "path:line" it came from
  std::string lang;    // ISO 639-1, "un" when unknown
  float lang_score = 0.0f;
};

class DocShardWriter {
 public:
  DocShardWriter(const std::string& path, const Provenance& prov);
  void add(const Document& d);
  uint64_t size() const { return n_; }
  // Records num_docs, validates and closes the file.
  void close();

 private:
  ShardWriter w_;
  RaggedColumn<uint8_t> text_, id_, source_, lang_;
  uint64_t n_ = 0;
};

class DocShardReader {
 public:
  explicit DocShardReader(const std::string& path);
  uint64_t size() const { return n_; }
  const std::string& path() const { return r_.path(); }
  // Documents [first, first+count), reading each column once for the whole block.
  std::vector<Document> read_block(uint64_t first, uint64_t count) const;
  Document get(uint64_t i) const { return read_block(i, 1).at(0); }
  const ShardReader& file() const { return r_; }

 private:
  std::vector<std::string> read_strings(const std::string& col, uint64_t first, uint64_t count) const;
  ShardReader r_;
  uint64_t n_ = 0;
};

}  // namespace bellows::io
