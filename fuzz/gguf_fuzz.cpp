// libFuzzer harness for formats/gguf (and the dequantisers in formats/quant): the reader takes
// model files from anywhere, so any input must end in a clean RuntimeError or a file whose every
// tensor dequantises. A file the reader accepts is also written again with GgufWriter and read
// once more: the metadata must come back identical, and when every tensor is F32/F16/BF16 (the
// types that survive a float round trip unchanged) so must the tensors' names, dims and values.
//
// Findings: a crash, a sanitizer report, or any exception other than bellows::RuntimeError
// (an InternalError or UsageError here is a bug too: the harness only passes what the reader
// accepted, which the writer must accept as well).
#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "formats/gguf.hpp"

namespace {

using bellows::formats::GgmlType;
using bellows::formats::GgufReader;
using bellows::formats::GgufTensorInfo;
using bellows::formats::GgufType;
using bellows::formats::GgufValue;
using bellows::formats::GgufWriter;

// Tensors above this many elements are skipped: the reader's bounds checks are what is being
// fuzzed, and a 4M-element read per input would only slow the search down.
constexpr uint64_t kMaxNumel = 1ull << 22;
constexpr uint64_t kMaxRoundTripAlignment = 1ull << 16;

// An anonymous in-memory file that still has a path (/proc/self/fd/N), so the reader's
// open/fstat/pread run as they would on disk and nothing is left behind in /tmp.
class MemFile {
 public:
  MemFile() : fd_(::memfd_create("gguf_fuzz", MFD_CLOEXEC)) {
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

bool same_float(double a, double b) {
  // Narrowing a NaN to f32/f16/bf16 may quiet it; any NaN matches any NaN.
  return std::isnan(a) ? std::isnan(b) : std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case GgufType::f32: case GgufType::f64: return same_float(a.f, b.f);
    case GgufType::boolean: return a.b == b.b;
    case GgufType::string: return a.s == b.s;
    case GgufType::array:
      if (a.elem_type != b.elem_type || a.arr.size() != b.arr.size()) return false;
      for (size_t k = 0; k < a.arr.size(); ++k)
        if (!same_value(a.arr[k], b.arr[k])) return false;
      return true;
    default: return a.u == b.u && a.i == b.i;
  }
}

// Every tensor's floats (empty for the skipped large ones). The reader's own tensors must
// always be readable once it has accepted the file, short of the file changing under it.
std::vector<std::vector<float>> read_everything(const GgufReader& r) {
  std::vector<std::vector<float>> values;
  for (const GgufTensorInfo& t : r.tensors()) {
    if (r.find_tensor(t.name) != &t) std::abort();
    std::vector<float> v;
    if (t.numel() <= kMaxNumel) {
      v.resize(t.numel());
      r.read_f32(t, v.data());
    }
    values.push_back(std::move(v));
  }
  return values;
}

bool round_trip_type(GgmlType t) { return t == GgmlType::f32 || t == GgmlType::f16 || t == GgmlType::bf16; }

void round_trip(const GgufReader& r, const std::vector<std::vector<float>>& values) {
  // The copy pads to the alignment, which may be up to 2^31: gigabytes of zeros in a memfd
  // (memory) per input. Larger alignments are still read and checked above, just not rewritten.
  if (r.alignment() > kMaxRoundTripAlignment) return;
  bool with_tensors = true;
  for (size_t k = 0; k < r.tensors().size(); ++k)
    if (!round_trip_type(r.tensors()[k].type) || r.tensors()[k].numel() > kMaxNumel) with_tensors = false;
  std::vector<GgufWriter::Tensor> decl;
  if (with_tensors)
    for (const auto& t : r.tensors()) decl.push_back({t.name, t.ne, t.type});
  MemFile copy;
  {
    GgufWriter w(copy.path(), r.metadata(), decl);
    for (size_t k = 0; k < decl.size(); ++k) w.write_f32(values[k].data());
    w.close();
  }
  GgufReader back(copy.path());
  if (back.version() != 3 || back.alignment() != r.alignment()) std::abort();
  if (back.metadata().size() != r.metadata().size()) std::abort();
  for (size_t k = 0; k < r.metadata().size(); ++k)
    if (back.metadata()[k].first != r.metadata()[k].first ||
        !same_value(back.metadata()[k].second, r.metadata()[k].second))
      std::abort();
  if (back.tensors().size() != decl.size()) std::abort();
  const std::vector<std::vector<float>> again = read_everything(back);
  for (size_t k = 0; k < decl.size(); ++k) {
    const GgufTensorInfo& a = r.tensors()[k];
    const GgufTensorInfo& b = back.tensors()[k];
    if (a.name != b.name || a.ne != b.ne || a.type != b.type || a.nbytes != b.nbytes) std::abort();
    for (size_t i = 0; i < values[k].size(); ++i)
      if (!same_float(values[k][i], again[k][i])) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemFile input;
  input.assign(data, size);
  try {
    GgufReader r(input.path());
    round_trip(r, read_everything(r));
  } catch (const bellows::RuntimeError&) {
    // The expected outcome for a malformed file.
  }
  return 0;
}
