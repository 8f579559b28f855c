// A zstd-compressed text file written as a stream (one frame per file). Frames concatenate:
// `cat a.zst b.zst` is a valid .zst, which lets each rank write its part and rank 0 join them
// without decompressing.
#pragma once

#include <zstd.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace bellows::io {

class ZstdWriter {
 public:
  ZstdWriter(const std::string& path, int level = 3);
  ~ZstdWriter();
  ZstdWriter(const ZstdWriter&) = delete;
  ZstdWriter& operator=(const ZstdWriter&) = delete;
  void write(std::string_view bytes);
  void write_line(std::string_view line) {
    write(line);
    write("\n");
  }
  // Ends the frame and closes the file; throws RuntimeError naming it on failure.
  void close();

 private:
  void drain(ZSTD_EndDirective mode, ZSTD_inBuffer& in);
  std::string path_;
  std::FILE* f_ = nullptr;
  ZSTD_CCtx* cctx_ = nullptr;
  std::string out_;
};

// Appends the bytes of `part` to `dest` (both paths), then removes `part`.
void append_file(const std::string& dest, const std::string& part);

}  // namespace bellows::io
