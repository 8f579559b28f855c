#include "io/zstd_writer.hpp"

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace bellows::io {

ZstdWriter::ZstdWriter(const std::string& path, int level) : path_(path) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw RuntimeError(path + ": cannot create: " + std::strerror(errno));
  cctx_ = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
  out_.resize(ZSTD_CStreamOutSize());
}

ZstdWriter::~ZstdWriter() {
  if (cctx_) ZSTD_freeCCtx(cctx_);
  if (f_) std::fclose(f_);
}

void ZstdWriter::drain(ZSTD_EndDirective mode, ZSTD_inBuffer& in) {
  for (;;) {
    ZSTD_outBuffer ob{out_.data(), out_.size(), 0};
    size_t left = ZSTD_compressStream2(cctx_, &ob, &in, mode);
    if (ZSTD_isError(left)) throw RuntimeError(path_ + ": zstd: " + ZSTD_getErrorName(left));
    if (ob.pos && std::fwrite(out_.data(), 1, ob.pos, f_) != ob.pos)
      throw RuntimeError(path_ + ": write failed: " + std::strerror(errno));
    bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
    if (done) return;
  }
}

void ZstdWriter::write(std::string_view bytes) {
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  drain(ZSTD_e_continue, in);
}

void ZstdWriter::close() {
  if (!f_) return;
  ZSTD_inBuffer in{nullptr, 0, 0};
  drain(ZSTD_e_end, in);
  if (std::fclose(f_) != 0) {
    f_ = nullptr;
    throw RuntimeError(path_ + ": close failed: " + std::strerror(errno));
  }
  f_ = nullptr;
}

void append_file(const std::string& dest, const std::string& part) {
  std::FILE* in = std::fopen(part.c_str(), "rb");
  if (!in) throw RuntimeError(part + ": cannot open: " + std::strerror(errno));
  std::FILE* out = std::fopen(dest.c_str(), "ab");
  if (!out) {
    std::fclose(in);
    throw RuntimeError(dest + ": cannot open for append: " + std::strerror(errno));
  }
  char buf[1 << 16];
  size_t n;
  bool ok = true;
  while ((n = std::fread(buf, 1, sizeof buf, in)) > 0)
    if (std::fwrite(buf, 1, n, out) != n) ok = false;
  ok = ok && !std::ferror(in);
  std::fclose(in);
  if (std::fclose(out) != 0) ok = false;
  if (!ok) throw RuntimeError(dest + ": cannot append " + part);
  std::remove(part.c_str());
}

}  // namespace bellows::io
