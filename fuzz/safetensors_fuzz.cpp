// libFuzzer harness for formats/safetensors: the reader takes files from anywhere, so any input
// must end in a clean RuntimeError or a file whose every tensor reads back. A file the reader
// accepts is also written again with SafetensorsWriter (when its dtypes allow) and read once
// more: the copy must hold the same tensors, offsets, metadata and values.
//
// Findings: a crash, a sanitizer report, any exception other than bellows::RuntimeError (an
// InternalError here is a bug too: the harness only passes the reader's own tensors), or an
// error message that does not start with the file's path or spans more than one line.
#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "formats/safetensors.hpp"

namespace {

using bellows::formats::SafetensorsReader;
using bellows::formats::SafetensorsTensor;
using bellows::formats::SafetensorsWriter;

// An anonymous in-memory file that still has a path (/proc/self/fd/N), so the reader's
// open/fstat/pread run as they would on disk and nothing is left behind in /tmp.
class MemFile {
 public:
  MemFile() : fd_(::memfd_create("safetensors_fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }
  void assign(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    for (size_t done = 0; done < size;) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }

 private:
  int fd_;
};

bool float_readable(const std::string& dtype) {
  return dtype == "F32" || dtype == "F16" || dtype == "BF16" || dtype == "F64";
}

bool writable(const std::string& dtype) { return dtype == "F32" || dtype == "F16" || dtype == "BF16"; }

// Every tensor's bytes and floats; a dtype that read_f32 refuses must be refused with
// RuntimeError, and one it accepts must not be refused.
std::vector<std::vector<float>> read_everything(const SafetensorsReader& r) {
  std::vector<std::vector<float>> values;
  for (const SafetensorsTensor& t : r.tensors()) {
    if (r.find(t.name) != &t) std::abort();
    std::vector<unsigned char> raw(t.end - t.begin);
    r.read_raw(t, raw.data());
    std::vector<float> v(t.numel());
    try {
      r.read_f32(t, v.data());
    } catch (const bellows::RuntimeError&) {
      if (float_readable(t.dtype)) throw;
    }
    values.push_back(std::move(v));
  }
  return values;
}

bool same_float(float a, float b) {
  // BF16 widens NaNs exactly (signalling ones included) and narrowing quiets them.
  return std::isnan(a) ? std::isnan(b) : std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

void check_same(const SafetensorsTensor& a, const SafetensorsTensor& b) {
  if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.begin != b.begin || a.end != b.end)
    std::abort();
}

// Written back in offset order the tensors land on the same offsets: the source tiles its
// data buffer from 0 without holes, exactly as the writer lays tensors out.
void round_trip(const SafetensorsReader& r, const std::vector<std::vector<float>>& values) {
  for (const SafetensorsTensor& t : r.tensors())
    if (!writable(t.dtype)) return;
  MemFile copy;
  {
    SafetensorsWriter w(copy.path(), r.tensors(), r.metadata());
    for (const auto& v : values) w.write_f32(v.data());
    w.close();
  }
  SafetensorsReader back(copy.path());
  if (back.tensors().size() != r.tensors().size()) std::abort();
  auto want_meta = r.metadata();
  want_meta.try_emplace("format", "pt");
  if (back.metadata() != want_meta) std::abort();
  std::vector<std::vector<float>> again = read_everything(back);
  for (size_t i = 0; i < values.size(); ++i) {
    check_same(r.tensors()[i], back.tensors()[i]);
    for (size_t k = 0; k < values[i].size(); ++k)
      if (!same_float(values[i][k], again[i][k])) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemFile input;
  input.assign(data, size);
  try {
    SafetensorsReader r(input.path());
    round_trip(r, read_everything(r));
  } catch (const bellows::RuntimeError& e) {
    // The expected outcome for a malformed file; its message must still be one line naming
    // the file, as every error in a SLURM log is.
    std::string msg = e.what();
    if (msg.rfind(input.path() + ": ", 0) != 0 || msg.find('\n') != std::string::npos) std::abort();
  }
  return 0;
}
