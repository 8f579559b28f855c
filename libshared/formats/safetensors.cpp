#include "formats/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "formats/half.hpp"

namespace bellows::formats {

namespace {

using nlohmann::json;

// The reference implementation's MAX_HEADER_SIZE: a bound on what a hostile file can make us
// allocate before anything else has been checked.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A real header nests three deep (header, entry, shape); anything far deeper is hostile and would
// otherwise cost memory out of all proportion to the header's size.
constexpr size_t kMaxJsonDepth = 32;
// Elements converted per read/write when a tensor is not F32: bounds the scratch buffer.
constexpr size_t kChunkElems = 1 << 16;

struct DtypeSize {
  const char* name;
  size_t bytes;
};

constexpr DtypeSize kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"F8_E4M3FNUZ", 1}, {"F8_E5M2FNUZ", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
    {"I32", 4}, {"U32", 4}, {"F32", 4}, {"C64", 8}, {"F64", 8}, {"I64", 8}, {"U64", 8},
};

bool is_sub_byte_dtype(const std::string& dtype) {
  return dtype == "F4" || dtype == "F6_E2M3" || dtype == "F6_E3M2";
}

// Names and dtype strings come from the file: quoting them as JSON keeps control characters
// and quotes in them from garbling a one-line error message.
std::string json_quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string tensor_prefix(const std::string& path, const std::string& name) {
  return path + ": tensor " + json_quoted(name) + ": ";
}

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// nlohmann's messages quote the offending input verbatim; keep them printable ASCII.
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '?';
  return out;
}

bool checked_numel(const std::vector<uint64_t>& shape, uint64_t* out) {
  uint64_t n = 1;
  for (uint64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return false;
  *out = n;
  return true;
}

void pread_exact(int fd, const std::string& path, void* out, size_t bytes, uint64_t offset) {
  auto* p = static_cast<char*>(out);
  while (bytes > 0) {
    ssize_t got = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw RuntimeError(path + ": read failed: " + std::strerror(errno));
    if (got == 0) throw RuntimeError(path + ": unexpected end of file at byte " + std::to_string(offset));
    p += got;
    bytes -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

void pwrite_all(int fd, const std::string& path, const void* data, size_t bytes, uint64_t offset) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t put = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) throw RuntimeError(path + ": write failed: " + std::strerror(errno));
    p += put;
    bytes -= static_cast<size_t>(put);
    offset += static_cast<uint64_t>(put);
  }
}

// Parses the header text. nlohmann keeps the last of duplicate keys without a word, and the
// format forbids them, so a parser callback watches every object's keys as they go by.
json parse_header_json(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> open_objects;
  size_t depth = 0;
  auto watch = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++depth > kMaxJsonDepth)
          throw RuntimeError(path + ": header nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        --depth;
        break;
      case json::parse_event_t::array_end:
        --depth;
        break;
      case json::parse_event_t::key:
        if (std::string key = parsed.get<std::string>(); !open_objects.back().insert(key).second) {
          if (open_objects.size() == 1) throw RuntimeError(path + ": duplicate tensor name " + json_quoted(key));
          throw RuntimeError(path + ": duplicate key " + json_quoted(key) + " in the header");
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  // nlohmann's lexer takes a NUL byte for the end of input, which would let anything after one
  // (such as NUL padding) through unread. JSON has no place for a raw NUL.
  if (size_t nul = text.find('\0'); nul != std::string::npos)
    throw RuntimeError(path + ": header is not valid JSON: NUL byte at header offset " + std::to_string(nul));
  try {
    return json::parse(text.begin(), text.end(), watch);
  } catch (const json::exception& e) {
    throw RuntimeError(path + ": header is not valid JSON: " + printable(e.what()));
  }
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& m) {
  if (!m.is_object()) throw RuntimeError(path + ": __metadata__ is not an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : m.items()) {
    if (!value.is_string())
      throw RuntimeError(path + ": __metadata__ value for " + json_quoted(key) + " is not a string");
    out[key] = value.get<std::string>();
  }
  return out;
}

// Non-negative JSON integers only: nlohmann stores them as number_unsigned, negative ones as
// number_integer and anything with a fraction, exponent or beyond 2^64 as a float.
bool unsigned_array(const json& j, std::vector<uint64_t>* out) {
  if (!j.is_array()) return false;
  out->clear();
  for (const auto& v : j) {
    if (!v.is_number_unsigned()) return false;
    out->push_back(v.get<uint64_t>());
  }
  return true;
}

const json& required_field(const std::string& prefix, const json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end()) throw RuntimeError(prefix + "missing \"" + key + "\"");
  return *it;
}

size_t checked_dtype_size(const std::string& prefix, const std::string& dtype) {
  if (is_sub_byte_dtype(dtype))
    throw RuntimeError(prefix + "dtype " + dtype + " packs elements into fractions of a byte, which is not supported");
  size_t size = safetensors_dtype_size(dtype);
  if (size == 0) throw RuntimeError(prefix + "unknown dtype " + json_quoted(dtype));
  return size;
}

SafetensorsTensor parse_entry(const std::string& path, const std::string& name, const json& entry) {
  std::string prefix = tensor_prefix(path, name);
  if (!entry.is_object()) throw RuntimeError(prefix + "entry is not a JSON object");
  SafetensorsTensor t;
  t.name = name;
  const json& dtype = required_field(prefix, entry, "dtype");
  if (!dtype.is_string()) throw RuntimeError(prefix + "\"dtype\" is not a string");
  t.dtype = dtype.get<std::string>();
  size_t elem_bytes = checked_dtype_size(prefix, t.dtype);
  if (!unsigned_array(required_field(prefix, entry, "shape"), &t.shape))
    throw RuntimeError(prefix + "\"shape\" is not an array of non-negative integers");
  std::vector<uint64_t> offsets;
  if (!unsigned_array(required_field(prefix, entry, "data_offsets"), &offsets) || offsets.size() != 2)
    throw RuntimeError(prefix + "\"data_offsets\" is not [begin, end] with non-negative integers");
  t.begin = offsets[0];
  t.end = offsets[1];
  uint64_t numel = 0, bytes = 0;
  if (!checked_numel(t.shape, &numel) || __builtin_mul_overflow(numel, elem_bytes, &bytes))
    throw RuntimeError(prefix + "shape " + shape_string(t.shape) + " has more bytes than fit in 64 bits");
  if (t.end < t.begin)
    throw RuntimeError(prefix + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                       "] end before they begin");
  if (t.end - t.begin != bytes)
    throw RuntimeError(prefix + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] hold " +
                       std::to_string(t.end - t.begin) + " bytes, but shape " + shape_string(t.shape) + " of " +
                       t.dtype + " needs " + std::to_string(bytes));
  return t;
}

// `sorted` is in offset order. The data must tile [0, data_size) exactly, as the reference
// reader demands: a hole or an overlap means the header and the bytes disagree.
void check_layout(const std::string& path, const std::vector<SafetensorsTensor>& sorted, uint64_t data_size) {
  uint64_t prev_end = 0;
  const SafetensorsTensor* prev = nullptr;
  for (const auto& t : sorted) {
    std::string prefix = tensor_prefix(path, t.name);
    if (!prev && t.begin != 0)
      throw RuntimeError(prefix + "data starts at byte " + std::to_string(t.begin) +
                         ", but the first tensor's data must start at 0");
    if (t.begin < prev_end)
      throw RuntimeError(prefix + "data at [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                         ") overlaps tensor " + json_quoted(prev->name) + ", which ends at " +
                         std::to_string(prev_end));
    if (t.begin > prev_end)
      throw RuntimeError(prefix + "data starts at byte " + std::to_string(t.begin) + ", leaving a hole of " +
                         std::to_string(t.begin - prev_end) + " bytes after tensor " + json_quoted(prev->name));
    prev_end = t.end;
    prev = &t;
  }
  if (prev_end != data_size)
    throw RuntimeError(path + ": the tensors' data ends at byte " + std::to_string(prev_end) +
                       " of the data buffer, but the file holds " + std::to_string(data_size) +
                       " bytes of data after the header");
}

void convert_chunk(const std::string& dtype, const unsigned char* in, float* out, size_t n) {
  if (dtype == "F16" || dtype == "BF16") {
    bool f16 = dtype == "F16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, in + 2 * i, 2);
      out[i] = f16 ? f16_to_f32(v) : bf16_to_f32(v);
    }
  } else {  // F64
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, in + 8 * i, 8);
      out[i] = static_cast<float>(v);
    }
  }
}

}  // namespace

uint64_t SafetensorsTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.bytes;
  return 0;
}

// --- reader ----------------------------------------------------------------------------------

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw RuntimeError(path + ": cannot open: " + std::strerror(errno));
  // The destructor does not run for a constructor that throws.
  try {
    load();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() {
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsReader::load() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw RuntimeError(path_ + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw RuntimeError(path_ + ": not a regular file");
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    throw RuntimeError(path_ + ": file is " + std::to_string(file_size) + " bytes, too short for a safetensors header");
  unsigned char len_bytes[8];
  pread_exact(fd_, path_, len_bytes, 8, 0);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | len_bytes[i];
  if (header_len > kMaxHeaderBytes)
    throw RuntimeError(path_ + ": header length " + std::to_string(header_len) + " exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes) + " bytes (not a safetensors file?)");
  if (header_len > file_size - 8)
    throw RuntimeError(path_ + ": header length " + std::to_string(header_len) + " runs past the end of the " +
                       std::to_string(file_size) + "-byte file");
  std::string header(header_len, '\0');
  pread_exact(fd_, path_, header.data(), header.size(), 8);
  if (header.empty() || header[0] != '{') throw RuntimeError(path_ + ": header does not start with '{'");
  json root = parse_header_json(path_, header);
  if (!root.is_object()) throw RuntimeError(path_ + ": header is not a JSON object");

  data_start_ = 8 + header_len;
  data_size_ = file_size - data_start_;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__")
      metadata_ = parse_metadata(path_, entry);
    else
      tensors_.push_back(parse_entry(path_, name, entry));
  }
  // Stable, over name order from the JSON object, so equal offsets (empty tensors) keep a
  // deterministic order.
  std::stable_sort(tensors_.begin(), tensors_.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  check_layout(path_, tensors_, data_size_);
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const SafetensorsTensor* SafetensorsReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsReader::check_own(const SafetensorsTensor& t) const {
  const SafetensorsTensor* own = find(t.name);
  BELLOWS_CHECK(own && own->begin == t.begin && own->end == t.end && own->dtype == t.dtype,
                path_ + ": tensor " + json_quoted(t.name) + " is not one of this file's tensors");
}

void SafetensorsReader::read_raw(const SafetensorsTensor& t, void* out) const {
  check_own(t);
  pread_exact(fd_, path_, out, t.end - t.begin, data_start_ + t.begin);
}

void SafetensorsReader::read_f32(const SafetensorsTensor& t, float* out) const {
  check_own(t);
  uint64_t offset = data_start_ + t.begin;
  if (t.dtype == "F32") {
    pread_exact(fd_, path_, out, t.end - t.begin, offset);
    return;
  }
  if (t.dtype != "F16" && t.dtype != "BF16" && t.dtype != "F64")
    throw RuntimeError(tensor_prefix(path_, t.name) + "dtype " + t.dtype +
                       " cannot be read as float (only F32, F16, BF16 and F64 can)");
  size_t elem = safetensors_dtype_size(t.dtype);
  uint64_t numel = (t.end - t.begin) / elem;
  std::vector<unsigned char> buf(std::min<uint64_t>(numel, kChunkElems) * elem);
  for (uint64_t done = 0; done < numel;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(numel - done, kChunkElems));
    pread_exact(fd_, path_, buf.data(), n * elem, offset + done * elem);
    convert_chunk(t.dtype, buf.data(), out + done, n);
    done += n;
  }
}

// --- writer ----------------------------------------------------------------------------------

namespace {

// json::dump refuses strings that are not UTF-8; say which one, and where it will end up.
void check_utf8(const std::string& path, const std::string& what, const std::string& s) {
  try {
    (void)json(s).dump();
  } catch (const json::type_error&) {
    throw RuntimeError(path + ": " + what + " is not valid UTF-8: " + json_quoted(s));
  }
}

}  // namespace

std::string SafetensorsWriter::layout_header(const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  auto& meta = header["__metadata__"];
  meta["format"] = "pt";  // transformers warns without it; a caller's own "format" wins below
  for (const auto& [key, value] : metadata) {
    check_utf8(path_, "metadata key", key);
    check_utf8(path_, "metadata value for " + json_quoted(key), value);
    meta[key] = value;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (auto& t : tensors_) {
    check_utf8(path_, "tensor name", t.name);
    BELLOWS_CHECK(t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16",
                  path_ + ": tensor " + json_quoted(t.name) + " declared with dtype " + t.dtype +
                      " (F32, F16, BF16 only)");
    BELLOWS_CHECK(t.name != "__metadata__", path_ + ": a tensor cannot be named __metadata__");
    BELLOWS_CHECK(names.insert(t.name).second, path_ + ": tensor " + json_quoted(t.name) + " declared twice");
    uint64_t numel = 0, bytes = 0;
    BELLOWS_CHECK(checked_numel(t.shape, &numel) &&
                      !__builtin_mul_overflow(numel, safetensors_dtype_size(t.dtype), &bytes) &&
                      !__builtin_add_overflow(offset, bytes, &t.end),
                  path_ + ": tensor " + json_quoted(t.name) + " shape " + shape_string(t.shape) + " overflows 64 bits");
    t.begin = offset;
    offset = t.end;
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  std::string text = header.dump();
  // The reference writer pads with spaces so the data buffer starts 8-byte aligned.
  text.resize((text.size() + 7) / 8 * 8, ' ');
  data_start_ = 8 + text.size();
  file_size_ = data_start_ + offset;
  return text;
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), tensors_(tensors) {
  std::string header = layout_header(metadata);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw RuntimeError(path + ": cannot create: " + std::strerror(errno));
  try {
    unsigned char len_bytes[8];
    uint64_t n = header.size();
    for (auto& b : len_bytes) {
      b = static_cast<unsigned char>(n & 0xFF);
      n >>= 8;
    }
    pwrite_all(fd_, path_, len_bytes, 8, 0);
    pwrite_all(fd_, path_, header.data(), header.size(), 8);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsWriter::write_f32(const float* data) {
  BELLOWS_CHECK(fd_ >= 0, path_ + ": write_f32 after close");
  BELLOWS_CHECK(next_ < tensors_.size(), path_ + ": more write_f32 calls than declared tensors");
  const SafetensorsTensor& t = tensors_[next_];
  uint64_t offset = data_start_ + t.begin;
  uint64_t numel = t.numel();
  if (t.dtype == "F32") {
    pwrite_all(fd_, path_, data, t.end - t.begin, offset);
  } else {
    bool f16 = t.dtype == "F16";
    std::vector<uint16_t> buf(std::min<uint64_t>(numel, kChunkElems));
    for (uint64_t done = 0; done < numel;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(numel - done, kChunkElems));
      for (size_t i = 0; i < n; ++i) buf[i] = f16 ? f32_to_f16(data[done + i]) : f32_to_bf16(data[done + i]);
      pwrite_all(fd_, path_, buf.data(), n * 2, offset + done * 2);
      done += n;
    }
  }
  ++next_;
}

void SafetensorsWriter::close() {
  BELLOWS_CHECK(next_ == tensors_.size(), path_ + ": closed after " + std::to_string(next_) + " of " +
                                              std::to_string(tensors_.size()) + " declared tensors were written");
  if (fd_ < 0) return;
  int rc = ::close(fd_);
  fd_ = -1;
  // NFS and quota errors can surface only here.
  if (rc != 0) throw RuntimeError(path_ + ": close failed: " + std::strerror(errno));
}

}  // namespace bellows::formats
