// GGUF v2/v3 reader and v3 writer. The reader treats the file as hostile: every count and length
// is compared with the bytes that are left before anything is allocated for it, and every error
// names the file and the key or tensor being read. The writer streams: header first, then each
// tensor converted in bounded chunks, so neither side ever holds more than one tensor.
#include "formats/gguf.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <unordered_set>

#include "core/error.hpp"
#include "formats/half.hpp"
#include "formats/quant.hpp"

namespace bellows::formats {

// GGUF has no byte-order marker and every file in practice is little-endian; the values are
// copied in and out with memcpy, which is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kWriteVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxKeyLen = 65535;        // the spec's limit for key names
constexpr uint64_t kMaxTensorNameLen = 63;    // ggml's GGML_MAX_NAME (64) less the NUL
constexpr uint64_t kMaxStringLen = 1ull << 26;  // 64 MiB: far above any chat template or vocab entry
constexpr uint32_t kMaxDims = 4;               // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;              // arrays of arrays of ... at most four levels
// Each parsed value costs a GgufValue (~120 bytes) however small its encoding, so the number of
// values (keys and array elements) is capped as well as bounded by the file: a 262k-token
// vocabulary with scores, types and merges is about a million; the cap keeps a hostile file's
// memory near 0.5 GB.
constexpr uint64_t kMaxMetadataValues = 1ull << 22;
// Lower bounds on the encodings, for bounding counts by the bytes left: a key/value holds at
// least a key length (8) and a value type (4); a tensor description a name length (8), n_dims
// (4), one dimension (8), a type (4) and an offset (8).
constexpr uint64_t kMinKvBytes = 12;
constexpr uint64_t kMinTensorInfoBytes = 32;
constexpr size_t kReadBufferBytes = 1 << 20;
constexpr size_t kChunkBytes = 4 << 20;  // raw bytes per pread when reading a tensor
constexpr size_t kWriteChunkElems = 1 << 20;  // floats converted per write (a multiple of 32)

const char* value_type_name(uint32_t t) {
  static const char* const names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                      "bool",  "string", "array",  "uint64", "int64", "float64"};
  return t < std::size(names) ? names[t] : "unknown";
}

// Bytes that one value of type t takes at least, for bounding an array's element count.
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    case GgufType::string: return 8;
    case GgufType::array: return 12;
  }
  return 1;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

bool valid_alignment(uint64_t a) { return a != 0 && (a & (a - 1)) == 0; }

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Fills `n` bytes from `offset`; false when the file ends first. Other errors throw.
bool pread_full(int fd, void* out, size_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw RuntimeError(path + ": read failed: " + std::strerror(errno));
    }
    if (got == 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return true;
}

void write_full(int fd, const void* data, size_t n, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t put = ::write(fd, p, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw RuntimeError(path + ": write failed: " + std::strerror(errno));
    }
    p += put;
    n -= static_cast<size_t>(put);
  }
}

// Padding, written from a fixed block of zeros: an alignment may be as large as 2^31.
void write_zeros(int fd, uint64_t n, const std::string& path) {
  static const uint8_t zeros[1 << 16] = {};
  while (n > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof zeros));
    write_full(fd, zeros, k, path);
    n -= k;
  }
}

// Sequential reads of the header through a buffer refilled with pread. `context` says what is
// being read ("key 'general.name'", "tensor 'output.weight'") and goes into every error.
class Cursor {
 public:
  Cursor(int fd, const std::string& path, uint64_t size) : fd_(fd), path_(path), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  void set_context(std::string c) { context_ = std::move(c); }
  const std::string& context() const { return context_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw RuntimeError(path_ + ": " + (context_.empty() ? "" : context_ + ": ") + what);
  }

  void read(void* out, uint64_t n) {
    if (n > remaining())
      fail("truncated: needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) + ", the file has " +
           std::to_string(size_));
    auto* dst = static_cast<uint8_t*>(out);
    while (n > 0) {
      if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_.size()) refill();
      const uint64_t at = pos_ - buf_start_;
      const uint64_t take = std::min<uint64_t>(n, buf_.size() - at);
      std::memcpy(dst, buf_.data() + at, take);
      dst += take;
      n -= take;
      pos_ += take;
    }
  }

  template <class T>
  T get() {
    T v;
    read(&v, sizeof v);
    return v;
  }

  // A u64 length and that many bytes; `what` names the string in errors ("key", "name", "string").
  std::string get_string(uint64_t max_len, const char* what) {
    const auto len = get<uint64_t>();
    if (len > remaining())
      fail(std::string(what) + " length " + std::to_string(len) + " exceeds the " + std::to_string(remaining()) +
           " bytes left in the file");
    if (len > max_len)
      fail(std::string(what) + " of " + std::to_string(len) + " bytes (limit " + std::to_string(max_len) + ")");
    std::string s(len, '\0');
    read(s.data(), len);
    return s;
  }

 private:
  void refill() {
    const uint64_t len = std::min<uint64_t>(kReadBufferBytes, size_ - pos_);
    buf_.resize(len);
    if (!pread_full(fd_, buf_.data(), len, pos_, path_)) {
      buf_.clear();
      fail("file shrank while being read");
    }
    buf_start_ = pos_;
  }

  int fd_;
  const std::string& path_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::vector<uint8_t> buf_;
  uint64_t buf_start_ = 0;
  std::string context_;
};

class MetadataParser {
 public:
  explicit MetadataParser(Cursor& cur) : cur_(cur) {}

  GgufValue value(uint32_t type_id, int depth) {
    if (type_id > static_cast<uint32_t>(GgufType::f64)) cur_.fail("unknown value type " + std::to_string(type_id));
    GgufValue v;
    v.type = static_cast<GgufType>(type_id);
    switch (v.type) {
      case GgufType::u8: v.u = cur_.get<uint8_t>(); break;
      case GgufType::i8: v.i = cur_.get<int8_t>(); break;
      case GgufType::u16: v.u = cur_.get<uint16_t>(); break;
      case GgufType::i16: v.i = cur_.get<int16_t>(); break;
      case GgufType::u32: v.u = cur_.get<uint32_t>(); break;
      case GgufType::i32: v.i = cur_.get<int32_t>(); break;
      case GgufType::u64: v.u = cur_.get<uint64_t>(); break;
      case GgufType::i64: v.i = cur_.get<int64_t>(); break;
      case GgufType::f32: v.f = cur_.get<float>(); break;
      case GgufType::f64: v.f = cur_.get<double>(); break;
      case GgufType::boolean: {
        const auto b = cur_.get<uint8_t>();
        if (b > 1) cur_.fail("bool value " + std::to_string(b) + " (must be 0 or 1)");
        v.b = b == 1;
        break;
      }
      case GgufType::string: v.s = cur_.get_string(kMaxStringLen, "string"); break;
      case GgufType::array: {
        const auto elem = cur_.get<uint32_t>();
        if (elem > static_cast<uint32_t>(GgufType::f64)) cur_.fail("array of unknown value type " + std::to_string(elem));
        v.elem_type = static_cast<GgufType>(elem);
        if (v.elem_type == GgufType::array && depth + 1 >= kMaxArrayDepth)
          cur_.fail("arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
        const auto count = cur_.get<uint64_t>();
        const uint64_t min_bytes = min_value_bytes(v.elem_type);
        if (count > cur_.remaining() / min_bytes)
          cur_.fail("array of " + std::to_string(count) + " " + value_type_name(elem) + " values cannot fit in the " +
                    std::to_string(cur_.remaining()) + " bytes left in the file");
        count_values(count);
        v.arr.reserve(count);  // bounded by the file and by kMaxMetadataValues
        for (uint64_t k = 0; k < count; ++k) v.arr.push_back(value(elem, depth + 1));
        break;
      }
    }
    return v;
  }

  // Every key/value and array element counts towards kMaxMetadataValues.
  void count_values(uint64_t n) {
    values_ += n;
    if (values_ > kMaxMetadataValues)
      cur_.fail("more than " + std::to_string(kMaxMetadataValues) + " metadata values in the file");
  }

 private:
  Cursor& cur_;
  uint64_t values_ = 0;
};

// ne product and byte size of a tensor, or an error message when a check fails.
struct TensorSize {
  uint64_t numel = 0, nbytes = 0;
  std::string error;
};

TensorSize tensor_size(const std::vector<uint64_t>& ne, uint32_t type_id) {
  TensorSize r;
  const GgmlBlock blk = ggml_block(type_id);
  if (blk.elems == 0) {
    r.error = "unknown or unsupported ggml type id " + std::to_string(type_id);
    return r;
  }
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t numel = 1;
  for (size_t j = 0; j < ne.size(); ++j) {
    // ggml keeps dimensions in int64_t.
    if (ne[j] > kMax) {
      r.error = "ne[" + std::to_string(j) + "] = " + std::to_string(ne[j]) + " is out of range";
      return r;
    }
    if (__builtin_mul_overflow(numel, ne[j], &numel) || numel > kMax) {
      r.error = "element count overflows (ne[" + std::to_string(j) + "] = " + std::to_string(ne[j]) + ")";
      return r;
    }
  }
  if (ne[0] % blk.elems != 0) {
    r.error = "ne[0] = " + std::to_string(ne[0]) + " is not a multiple of " +
              ggml_type_name(static_cast<GgmlType>(type_id)) + "'s block of " + std::to_string(blk.elems);
    return r;
  }
  // Blocks never cost more bytes than they hold elements times 4, so this cannot overflow.
  r.numel = numel;
  r.nbytes = numel / blk.elems * blk.bytes;
  return r;
}

}  // namespace

// --- values ------------------------------------------------------------------------------------

GgufValue GgufValue::make_u32(uint32_t v) {
  GgufValue r;
  r.type = GgufType::u32;
  r.u = v;
  return r;
}
GgufValue GgufValue::make_i32(int32_t v) {
  GgufValue r;
  r.type = GgufType::i32;
  r.i = v;
  return r;
}
GgufValue GgufValue::make_f32(float v) {
  GgufValue r;
  r.type = GgufType::f32;
  r.f = v;
  return r;
}
GgufValue GgufValue::make_bool(bool v) {
  GgufValue r;
  r.type = GgufType::boolean;
  r.b = v;
  return r;
}
GgufValue GgufValue::make_string(std::string v) {
  GgufValue r;
  r.type = GgufType::string;
  r.s = std::move(v);
  return r;
}
GgufValue GgufValue::make_string_array(const std::vector<std::string>& v) {
  GgufValue r;
  r.type = GgufType::array;
  r.elem_type = GgufType::string;
  r.arr.reserve(v.size());
  for (const auto& s : v) r.arr.push_back(make_string(s));
  return r;
}
GgufValue GgufValue::make_i32_array(const std::vector<int32_t>& v) {
  GgufValue r;
  r.type = GgufType::array;
  r.elem_type = GgufType::i32;
  r.arr.reserve(v.size());
  for (int32_t x : v) r.arr.push_back(make_i32(x));
  return r;
}
GgufValue GgufValue::make_f32_array(const std::vector<float>& v) {
  GgufValue r;
  r.type = GgufType::array;
  r.elem_type = GgufType::f32;
  r.arr.reserve(v.size());
  for (float x : v) r.arr.push_back(make_f32(x));
  return r;
}

uint64_t GgufValue::as_uint(const std::string& what) const {
  switch (type) {
    case GgufType::u8: case GgufType::u16: case GgufType::u32: case GgufType::u64:
      return u;
    case GgufType::i8: case GgufType::i16: case GgufType::i32: case GgufType::i64:
      if (i < 0) throw RuntimeError(what + ": negative value " + std::to_string(i) + " where a count is expected");
      return static_cast<uint64_t>(i);
    default:
      throw RuntimeError(what + ": expected an integer, found " + value_type_name(static_cast<uint32_t>(type)));
  }
}

double GgufValue::as_double(const std::string& what) const {
  if (type == GgufType::f32 || type == GgufType::f64) return f;
  throw RuntimeError(what + ": expected a float, found " + value_type_name(static_cast<uint32_t>(type)));
}

const std::string& GgufValue::as_string(const std::string& what) const {
  if (type == GgufType::string) return s;
  throw RuntimeError(what + ": expected a string, found " + value_type_name(static_cast<uint32_t>(type)));
}

// --- tensor types ------------------------------------------------------------------------------

const char* ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::f32: return "F32";
    case GgmlType::f16: return "F16";
    case GgmlType::q4_0: return "Q4_0";
    case GgmlType::q4_1: return "Q4_1";
    case GgmlType::q8_0: return "Q8_0";
    case GgmlType::q4_k: return "Q4_K";
    case GgmlType::q5_k: return "Q5_K";
    case GgmlType::q6_k: return "Q6_K";
    case GgmlType::bf16: return "BF16";
  }
  return "unknown";
}

GgmlBlock ggml_block(uint32_t type_id) {
  switch (static_cast<GgmlType>(type_id)) {
    case GgmlType::f32: return {1, 4};
    case GgmlType::f16: return {1, 2};
    case GgmlType::bf16: return {1, 2};
    case GgmlType::q4_0: return {32, 18};
    case GgmlType::q4_1: return {32, 20};
    case GgmlType::q8_0: return {32, 34};
    case GgmlType::q4_k: return {256, 144};
    case GgmlType::q5_k: return {256, 176};
    case GgmlType::q6_k: return {256, 210};
  }
  return {};
}

uint64_t GgufTensorInfo::numel() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

// --- reader ------------------------------------------------------------------------------------

GgufReader::GgufReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw RuntimeError(path + ": cannot open: " + std::strerror(errno));
  try {
    parse();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

GgufReader::~GgufReader() {
  if (fd_ >= 0) ::close(fd_);
}

void GgufReader::parse() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw RuntimeError(path_ + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw RuntimeError(path_ + ": not a regular file");
  file_size_ = static_cast<uint64_t>(st.st_size);
  Cursor cur(fd_, path_, file_size_);

  cur.set_context("header");
  char magic[4];
  cur.read(magic, 4);
  if (std::memcmp(magic, kMagic, 4) != 0) cur.fail("not a GGUF file (the first four bytes are not \"GGUF\")");
  version_ = cur.get<uint32_t>();
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    if (swapped == 2 || swapped == 3) cur.fail("big-endian GGUF files are not supported");
    // Version 1 used 32-bit counts and lengths; later versions are unknown to this code.
    cur.fail("GGUF version " + std::to_string(version_) + " is not supported (versions 2 and 3 are)");
  }
  const auto tensor_count = cur.get<uint64_t>();
  const auto kv_count = cur.get<uint64_t>();
  if (kv_count > cur.remaining() / kMinKvBytes)
    cur.fail(std::to_string(kv_count) + " metadata entries cannot fit in the " + std::to_string(cur.remaining()) +
             " bytes left in the file");
  if (tensor_count > (cur.remaining() - kv_count * kMinKvBytes) / kMinTensorInfoBytes)
    cur.fail(std::to_string(tensor_count) + " tensor descriptions cannot fit in the " + std::to_string(cur.remaining()) +
             " bytes left in the file");

  // No reserve() from the counts: they are bounded by the file's size, but an entry costs far
  // more in memory than its smallest encoding, so memory grows only with what was really parsed.
  MetadataParser parser(cur);
  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < kv_count; ++k) {
    cur.set_context("metadata entry " + std::to_string(k));
    parser.count_values(1);
    std::string key = cur.get_string(kMaxKeyLen, "key");
    if (key.empty()) cur.fail("empty key");
    cur.set_context("key " + quoted(key));
    if (!keys.insert(key).second) cur.fail("duplicate key");
    const auto type = cur.get<uint32_t>();
    GgufValue v = parser.value(type, 0);
    kv_.emplace_back(std::move(key), std::move(v));
  }

  alignment_ = kDefaultAlignment;
  if (const GgufValue* a = find("general.alignment")) {
    const std::string where = path_ + ": key 'general.alignment'";
    if (a->type != GgufType::u32)
      throw RuntimeError(where + ": type " + value_type_name(static_cast<uint32_t>(a->type)) + ", expected uint32");
    if (!valid_alignment(a->u))
      throw RuntimeError(where + ": " + std::to_string(a->u) + " is not a power of two");
    alignment_ = a->u;
  }

  for (uint64_t k = 0; k < tensor_count; ++k) {
    cur.set_context("tensor " + std::to_string(k));
    GgufTensorInfo t;
    t.name = cur.get_string(kMaxTensorNameLen, "name");  // the limit is ggml's
    if (t.name.empty()) cur.fail("empty name");
    cur.set_context("tensor " + quoted(t.name));
    if (tensor_index_.count(t.name)) cur.fail("duplicate tensor name");
    const auto n_dims = cur.get<uint32_t>();
    if (n_dims < 1 || n_dims > kMaxDims) cur.fail(std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    t.ne.resize(n_dims);
    for (auto& d : t.ne) d = cur.get<uint64_t>();
    const auto type_id = cur.get<uint32_t>();
    const TensorSize size = tensor_size(t.ne, type_id);
    if (!size.error.empty()) cur.fail(size.error);
    t.type = static_cast<GgmlType>(type_id);
    t.nbytes = size.nbytes;
    t.offset = cur.get<uint64_t>();
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  data_start_ = align_up(cur.pos(), alignment_);
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_) {
    const std::string where = path_ + ": tensor " + quoted(t.name);
    if (t.offset % alignment_ != 0)
      throw RuntimeError(where + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                         std::to_string(alignment_));
    if (t.nbytes == 0) continue;  // nothing to read, nothing to overlap
    if (data_start_ > file_size_ || t.offset > file_size_ - data_start_ ||
        t.nbytes > file_size_ - data_start_ - t.offset)
      throw RuntimeError(where + ": data at offset " + std::to_string(t.offset) + " + " + std::to_string(t.nbytes) +
                         " bytes lies beyond the end of the file (data section starts at " +
                         std::to_string(data_start_) + ", file size " + std::to_string(file_size_) + ")");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensorInfo& a = *by_offset[k - 1];
    const GgufTensorInfo& b = *by_offset[k];
    if (b.offset < a.offset + a.nbytes)
      throw RuntimeError(path_ + ": tensors " + quoted(a.name) + " and " + quoted(b.name) + " overlap");
  }
}

const GgufValue* GgufReader::find(const std::string& key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

const GgufTensorInfo* GgufReader::find_tensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

void GgufReader::read_f32(const GgufTensorInfo& t, float* out) const {
  const GgmlBlock blk = ggml_block(static_cast<uint32_t>(t.type));
  BELLOWS_CHECK(blk.elems != 0 && t.nbytes % blk.bytes == 0 && t.nbytes / blk.bytes * blk.elems == t.numel(),
                "read_f32: tensor '" + t.name + "' was not described by this reader");
  BELLOWS_CHECK(t.nbytes == 0 || data_start_ + t.offset + t.nbytes <= file_size_,
                "read_f32: tensor '" + t.name + "' lies outside " + path_);
  const uint64_t nblocks = t.nbytes / blk.bytes;
  const uint64_t chunk = std::max<uint64_t>(1, kChunkBytes / blk.bytes);
  std::vector<uint8_t> buf(std::min(nblocks, chunk) * blk.bytes);
  for (uint64_t done = 0; done < nblocks;) {
    const uint64_t nb = std::min(chunk, nblocks - done);
    if (!pread_full(fd_, buf.data(), nb * blk.bytes, data_start_ + t.offset + done * blk.bytes, path_))
      throw RuntimeError(path_ + ": tensor " + quoted(t.name) + ": the file ends inside the tensor's data");
    dequantize_row(t.type, buf.data(), nb * blk.elems, out + done * blk.elems);
    done += nb;
  }
}

// --- writer ------------------------------------------------------------------------------------

namespace {

// Appends GGUF encodings to a byte string (the header is written in one piece: it is metadata
// and tensor descriptions only, kilobytes to a few megabytes for a large vocabulary).
class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}
  template <class T>
  void put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_.append(s);
  }
  void put_value(const GgufValue& v, const std::string& key) {
    auto in_range = [&](bool ok) {
      BELLOWS_CHECK(ok, "GGUF metadata key '" + key + "': value out of range for " +
                            value_type_name(static_cast<uint32_t>(v.type)));
    };
    switch (v.type) {
      case GgufType::u8: in_range(v.u <= UINT8_MAX); put<uint8_t>(static_cast<uint8_t>(v.u)); break;
      case GgufType::i8: in_range(v.i >= INT8_MIN && v.i <= INT8_MAX); put<int8_t>(static_cast<int8_t>(v.i)); break;
      case GgufType::u16: in_range(v.u <= UINT16_MAX); put<uint16_t>(static_cast<uint16_t>(v.u)); break;
      case GgufType::i16: in_range(v.i >= INT16_MIN && v.i <= INT16_MAX); put<int16_t>(static_cast<int16_t>(v.i)); break;
      case GgufType::u32: in_range(v.u <= UINT32_MAX); put<uint32_t>(static_cast<uint32_t>(v.u)); break;
      case GgufType::i32: in_range(v.i >= INT32_MIN && v.i <= INT32_MAX); put<int32_t>(static_cast<int32_t>(v.i)); break;
      case GgufType::u64: put<uint64_t>(v.u); break;
      case GgufType::i64: put<int64_t>(v.i); break;
      case GgufType::f32: put<float>(static_cast<float>(v.f)); break;
      case GgufType::f64: put<double>(v.f); break;
      case GgufType::boolean: put<uint8_t>(v.b ? 1 : 0); break;
      case GgufType::string: put_string(v.s); break;
      case GgufType::array:
        put<uint32_t>(static_cast<uint32_t>(v.elem_type));
        put<uint64_t>(v.arr.size());
        for (const auto& e : v.arr) {
          BELLOWS_CHECK(e.type == v.elem_type, "GGUF metadata key '" + key + "': an array of " +
                                                   value_type_name(static_cast<uint32_t>(v.elem_type)) +
                                                   " holds a " + value_type_name(static_cast<uint32_t>(e.type)));
          put_value(e, key);
        }
        break;
      default:
        BELLOWS_CHECK(false, "GGUF metadata key '" + key + "': value type " +
                                 std::to_string(static_cast<uint32_t>(v.type)));
    }
  }

 private:
  std::string& out_;
};

bool writable(GgmlType t) {
  return t == GgmlType::f32 || t == GgmlType::f16 || t == GgmlType::bf16 || t == GgmlType::q8_0;
}

}  // namespace

GgufWriter::GgufWriter(const std::string& path, const GgufMetadata& metadata, const std::vector<Tensor>& tensors)
    : path_(path) {
  std::unordered_set<std::string> keys;
  for (const auto& [key, v] : metadata) {
    if (key.empty()) throw UsageError(path + ": GGUF metadata with an empty key");
    if (key.size() > kMaxKeyLen) throw UsageError(path + ": GGUF metadata key of " + std::to_string(key.size()) + " bytes");
    if (!keys.insert(key).second) throw UsageError(path + ": GGUF metadata key " + quoted(key) + " given twice");
    if (key == "general.alignment") {
      if (v.type != GgufType::u32 || !valid_alignment(v.u))
        throw UsageError(path + ": general.alignment must be a uint32 power of two");
      alignment_ = v.u;
    }
  }

  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const std::string where = path + ": tensor " + quoted(t.name);
    if (t.name.empty()) throw UsageError(path + ": a tensor with an empty name");
    if (t.name.size() > kMaxTensorNameLen)
      throw UsageError(where + ": name longer than " + std::to_string(kMaxTensorNameLen) + " bytes");
    if (!names.insert(t.name).second) throw UsageError(where + ": name given twice");
    if (t.ne.empty() || t.ne.size() > kMaxDims)
      throw UsageError(where + ": " + std::to_string(t.ne.size()) + " dimensions (1 to 4 allowed)");
    if (!writable(t.type))
      throw UsageError(where + ": cannot write type " + ggml_type_name(t.type) + " (F32, F16, BF16 and Q8_0 can be)");
    const TensorSize size = tensor_size(t.ne, static_cast<uint32_t>(t.type));
    if (!size.error.empty()) throw UsageError(where + ": " + size.error);
    GgufTensorInfo info;
    info.name = t.name;
    info.ne = t.ne;
    info.type = t.type;
    info.offset = offset;
    info.nbytes = size.nbytes;
    constexpr uint64_t kMaxData = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (offset > kMaxData - info.nbytes) throw UsageError(where + ": the tensors' data exceeds 2^63 bytes");
    offset = align_up(offset + info.nbytes, alignment_);
    tensors_.push_back(std::move(info));
  }

  std::string header;
  Encoder enc(header);
  header.append(kMagic, 4);
  enc.put<uint32_t>(kWriteVersion);
  enc.put<uint64_t>(tensors_.size());
  enc.put<uint64_t>(metadata.size());
  for (const auto& [key, v] : metadata) {
    enc.put_string(key);
    enc.put<uint32_t>(static_cast<uint32_t>(v.type));
    enc.put_value(v, key);
  }
  for (const auto& t : tensors_) {
    enc.put_string(t.name);
    enc.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) enc.put<uint64_t>(d);
    enc.put<uint32_t>(static_cast<uint32_t>(t.type));
    enc.put<uint64_t>(t.offset);
  }
  data_start_ = align_up(header.size(), alignment_);

  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw RuntimeError(path + ": cannot create: " + std::strerror(errno));
  write_full(fd_, header.data(), header.size(), path_);
  write_zeros(fd_, data_start_ - header.size(), path_);
  file_size_ = data_start_;
}

GgufWriter::~GgufWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void GgufWriter::write_f32(const float* data) {
  BELLOWS_CHECK(fd_ >= 0, "GgufWriter::write_f32 after close");
  BELLOWS_CHECK(next_ < tensors_.size(), "GgufWriter::write_f32: all " + std::to_string(tensors_.size()) +
                                             " tensors of " + path_ + " were already written");
  const GgufTensorInfo& t = tensors_[next_];
  BELLOWS_CHECK(file_size_ == data_start_ + t.offset, "GgufWriter: tensor '" + t.name + "' out of place");
  const uint64_t n = t.numel();
  const GgmlBlock blk = ggml_block(static_cast<uint32_t>(t.type));
  std::vector<uint8_t> buf(std::min<uint64_t>(n, kWriteChunkElems) / blk.elems * blk.bytes);
  for (uint64_t done = 0; done < n;) {
    const uint64_t m = std::min<uint64_t>(kWriteChunkElems, n - done);
    const float* x = data + done;
    switch (t.type) {
      case GgmlType::f32: std::memcpy(buf.data(), x, m * sizeof(float)); break;
      case GgmlType::f16:
        for (uint64_t k = 0; k < m; ++k) {
          const uint16_t h = f32_to_f16(x[k]);
          std::memcpy(buf.data() + 2 * k, &h, 2);
        }
        break;
      case GgmlType::bf16:
        for (uint64_t k = 0; k < m; ++k) {
          const uint16_t h = f32_to_bf16(x[k]);
          std::memcpy(buf.data() + 2 * k, &h, 2);
        }
        break;
      case GgmlType::q8_0:
        for (uint64_t k = 0; k < m; ++k)
          if (!std::isfinite(x[k]))
            throw RuntimeError(path_ + ": tensor " + quoted(t.name) + ": element " + std::to_string(done + k) +
                               " is not finite, which Q8_0 cannot represent");
        quantize_row_q8_0(x, m, buf.data());
        break;
      default:
        BELLOWS_CHECK(false, "GgufWriter: type " + std::string(ggml_type_name(t.type)));
    }
    write_full(fd_, buf.data(), m / blk.elems * blk.bytes, path_);
    file_size_ += m / blk.elems * blk.bytes;
    done += m;
  }
  const uint64_t padded = align_up(file_size_, alignment_);
  write_zeros(fd_, padded - file_size_, path_);
  file_size_ = padded;
  ++next_;
}

void GgufWriter::close() {
  BELLOWS_CHECK(fd_ >= 0, "GgufWriter::close called twice");
  BELLOWS_CHECK(next_ == tensors_.size(), "GgufWriter::close: " + std::to_string(next_) + " of " +
                                              std::to_string(tensors_.size()) + " tensors written to " + path_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw RuntimeError(path_ + ": close failed: " + std::strerror(errno));
}

}  // namespace bellows::formats
