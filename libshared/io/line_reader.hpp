// Streaming line reader for plain, gzip (.gz) and zstd (.zst) files. Memory stays bounded by
// the longest accepted line: a line longer than the limit is skipped and reported, never
// buffered whole (a 100 MB single-line file costs one read buffer, not 100 MB).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace bellows::io {

enum class Compression { none, gzip, zstd };
// By file name: ".gz" gzip, ".zst"/".zstd" zstd, anything else plain.
Compression compression_of(const std::string& path);

class LineReader {
 public:
  // Throws RuntimeError naming the file when it cannot be opened.
  LineReader(const std::string& path, size_t max_line_bytes);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  enum class Status { line, too_long, eof };
  // Next line without its '\n' (a final line without '\n' counts). Throws RuntimeError naming
  // file and line for truncated or corrupt compressed input.
  Status next(std::string& line);
  // 1-based number of the line last returned.
  uint64_t line_number() const { return line_no_; }
  // Bytes of the line last returned or skipped, its '\n' included.
  uint64_t line_bytes() const { return line_bytes_; }
  // Uncompressed bytes consumed so far, and compressed bytes read from disk.
  uint64_t bytes_read() const { return bytes_out_; }
  uint64_t file_bytes_read() const;
  const std::string& path() const { return path_; }

  // The whole (decompressed) content, up to `max_bytes`; sets `too_long` instead of reading more.
  static std::string read_all(const std::string& path, size_t max_bytes, bool* too_long);

 private:
  class Source;
  bool fill();  // refills buf_; false at end of input

  std::string path_;
  size_t max_line_;
  std::unique_ptr<Source> src_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  uint64_t line_no_ = 0, bytes_out_ = 0, line_bytes_ = 0;
};

}  // namespace bellows::io
