#include "io/raw_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace bellows::io {

RawFileWriter::RawFileWriter(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
  if (!f_) throw RuntimeError(path + ": cannot create: " + std::strerror(errno));
}

RawFileWriter::~RawFileWriter() {
  if (f_) std::fclose(f_);
}

void RawFileWriter::write(const void* data, size_t bytes) {
  if (bytes && std::fwrite(data, 1, bytes, f_) != bytes) throw RuntimeError(path_ + ": write failed: " + std::strerror(errno));
}

void RawFileWriter::close() {
  if (f_ && std::fclose(f_) != 0) {
    f_ = nullptr;
    throw RuntimeError(path_ + ": close failed");
  }
  f_ = nullptr;
}

RawFileReader::RawFileReader(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY)) {
  if (fd_ < 0) throw RuntimeError(path + ": cannot open: " + std::strerror(errno));
}

RawFileReader::~RawFileReader() {
  if (fd_ >= 0) ::close(fd_);
}

RawFileReader::RawFileReader(RawFileReader&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; }

void RawFileReader::read_at(void* out, size_t bytes, uint64_t offset) const {
  ssize_t got = ::pread(fd_, out, bytes, static_cast<off_t>(offset));
  if (got != static_cast<ssize_t>(bytes)) throw RuntimeError(path_ + ": short read");
}

}  // namespace bellows::io
