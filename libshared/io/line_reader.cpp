#include "io/line_reader.hpp"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace bellows::io {
namespace {
constexpr size_t kReadChunk = 1 << 20;

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
}  // namespace

Compression compression_of(const std::string& path) {
  if (ends_with(path, ".gz")) return Compression::gzip;
  if (ends_with(path, ".zst") || ends_with(path, ".zstd")) return Compression::zstd;
  return Compression::none;
}

// Decompressing byte source: read() returns up to n bytes, 0 at a clean end of input.
class LineReader::Source {
 public:
  Source(const std::string& path, Compression c) : path_(path), c_(c) {
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) throw RuntimeError(path + ": cannot open: " + std::strerror(errno));
    if (c_ == Compression::gzip) {
      std::memset(&zs_, 0, sizeof zs_);
      if (inflateInit2(&zs_, 15 + 32) != Z_OK) throw RuntimeError(path + ": cannot initialise gzip decoder");
    } else if (c_ == Compression::zstd) {
      zd_ = ZSTD_createDStream();
      ZSTD_initDStream(zd_);
    }
    in_.resize(c_ == Compression::none ? 0 : kReadChunk);
  }
  ~Source() {
    if (c_ == Compression::gzip) inflateEnd(&zs_);
    if (zd_) ZSTD_freeDStream(zd_);
    if (f_) std::fclose(f_);
  }
  uint64_t file_bytes() const { return file_bytes_; }

  // `line` is the line being read, for messages about truncation.
  size_t read(char* out, size_t n, uint64_t line) {
    if (c_ == Compression::none) {
      size_t got = std::fread(out, 1, n, f_);
      if (got == 0 && std::ferror(f_)) throw RuntimeError(path_ + ": read error: " + std::strerror(errno));
      file_bytes_ += got;
      return got;
    }
    return c_ == Compression::gzip ? read_gzip(out, n, line) : read_zstd(out, n, line);
  }

 private:
  bool refill_input() {
    in_len_ = std::fread(in_.data(), 1, in_.size(), f_);
    in_pos_ = 0;
    if (in_len_ == 0 && std::ferror(f_)) throw RuntimeError(path_ + ": read error: " + std::strerror(errno));
    file_bytes_ += in_len_;
    return in_len_ > 0;
  }

  [[noreturn]] void truncated(uint64_t line, const std::string& why) {
    throw RuntimeError(path_ + ":" + std::to_string(line) + ": " + why);
  }

  size_t read_gzip(char* out, size_t n, uint64_t line) {
    zs_.next_out = reinterpret_cast<Bytef*>(out);
    zs_.avail_out = static_cast<uInt>(n);
    while (zs_.avail_out == n) {
      if (zs_.avail_in == 0) {
        if (!refill_input()) {
          if (stream_done_) return 0;
          truncated(line, "truncated gzip data (the file ends inside a compressed stream)");
        }
        zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
        zs_.avail_in = static_cast<uInt>(in_len_);
      }
      if (stream_done_) {
        // Concatenated gzip members (as `cat a.gz b.gz` makes) are valid: start the next one.
        inflateReset(&zs_);
        stream_done_ = false;
      }
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        stream_done_ = true;
        if (zs_.avail_out != n) break;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        truncated(line, std::string("corrupt gzip data: ") + (zs_.msg ? zs_.msg : "inflate failed"));
      }
    }
    return n - zs_.avail_out;
  }

  size_t read_zstd(char* out, size_t n, uint64_t line) {
    ZSTD_outBuffer ob{out, n, 0};
    while (ob.pos == 0) {
      if (in_pos_ == in_len_) {
        if (!refill_input()) {
          if (last_hint_ == 0) return 0;
          truncated(line, "truncated zstd data (the file ends inside a frame)");
        }
      }
      ZSTD_inBuffer ib{in_.data(), in_len_, in_pos_};
      size_t hint = ZSTD_decompressStream(zd_, &ob, &ib);
      in_pos_ = ib.pos;
      if (ZSTD_isError(hint)) truncated(line, std::string("corrupt zstd data: ") + ZSTD_getErrorName(hint));
      last_hint_ = hint;
    }
    return ob.pos;
  }

  std::string path_;
  Compression c_;
  std::FILE* f_ = nullptr;
  z_stream zs_{};
  bool stream_done_ = false;
  ZSTD_DStream* zd_ = nullptr;
  size_t last_hint_ = 0;
  std::string in_;
  size_t in_len_ = 0, in_pos_ = 0;
  uint64_t file_bytes_ = 0;
};

LineReader::LineReader(const std::string& path, size_t max_line_bytes)
    : path_(path), max_line_(max_line_bytes), src_(std::make_unique<Source>(path, compression_of(path))) {}

LineReader::~LineReader() = default;

uint64_t LineReader::file_bytes_read() const { return src_->file_bytes(); }

bool LineReader::fill() {
  if (eof_) return false;
  buf_.erase(0, pos_);
  pos_ = 0;
  size_t old = buf_.size();
  buf_.resize(old + kReadChunk);
  size_t got = src_->read(buf_.data() + old, kReadChunk, line_no_ + 1);
  buf_.resize(old + got);
  bytes_out_ += got;
  if (got == 0) eof_ = true;
  return got > 0;
}

LineReader::Status LineReader::next(std::string& line) {
  size_t scan = pos_;
  for (;;) {
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(buf_.data() + scan, '\n', buf_.size() - scan);
    if (nl) {
      size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
      ++line_no_;
      line_bytes_ = len + 1;
      if (len > max_line_) {
        pos_ += len + 1;
        return Status::too_long;
      }
      line.assign(start, len);
      pos_ += len + 1;
      return Status::line;
    }
    if (buf_.size() - pos_ > max_line_) {
      // Too long already: drop what we have and skip to the end of this line.
      ++line_no_;
      line_bytes_ = buf_.size() - pos_;
      for (;;) {
        buf_.clear();
        pos_ = 0;
        if (!fill()) return Status::too_long;
        const void* end = std::memchr(buf_.data(), '\n', buf_.size());
        if (end) {
          pos_ = static_cast<size_t>(static_cast<const char*>(end) - buf_.data()) + 1;
          line_bytes_ += pos_;
          return Status::too_long;
        }
        line_bytes_ += buf_.size();
      }
    }
    scan = buf_.size() - pos_;  // after fill() the unread part starts at 0
    if (!fill()) {
      if (buf_.size() == pos_) return Status::eof;
      ++line_no_;
      line_bytes_ = buf_.size() - pos_;
      line.assign(buf_.data() + pos_, buf_.size() - pos_);
      pos_ = buf_.size();
      return Status::line;
    }
  }
}

std::string LineReader::read_all(const std::string& path, size_t max_bytes, bool* too_long) {
  Source src(path, compression_of(path));
  std::string out;
  *too_long = false;
  char buf[1 << 16];
  for (;;) {
    size_t got = src.read(buf, sizeof buf, 1);
    if (got == 0) break;
    if (out.size() + got > max_bytes) {
      *too_long = true;
      return {};
    }
    out.append(buf, got);
  }
  return out;
}

}  // namespace bellows::io
