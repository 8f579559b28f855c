// Raw binary work files: the packers' token streams, written sequentially by one rank and read
// at arbitrary offsets by any rank (a shared filesystem, no data through MPI).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace bellows::io {

class RawFileWriter {
 public:
  explicit RawFileWriter(const std::string& path);  // RuntimeError naming the file
  ~RawFileWriter();
  RawFileWriter(const RawFileWriter&) = delete;
  RawFileWriter& operator=(const RawFileWriter&) = delete;
  void write(const void* data, size_t bytes);
  void close();

 private:
  std::string path_;
  std::FILE* f_;
};

class RawFileReader {
 public:
  explicit RawFileReader(const std::string& path);  // RuntimeError naming the file
  ~RawFileReader();
  RawFileReader(RawFileReader&& o) noexcept;
  RawFileReader(const RawFileReader&) = delete;
  RawFileReader& operator=(const RawFileReader&) = delete;
  // Exactly `bytes` bytes at `offset`; RuntimeError naming the file on a short read.
  void read_at(void* out, size_t bytes, uint64_t offset) const;

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace bellows::io
