// GGUF (llama.cpp's model file), version 3 written, 2 and 3 read: a header, typed metadata
// key/values, tensor descriptions (dimensions in ggml order: ne[0] is the fastest-varying, the
// reverse of a PyTorch shape), then the aligned tensor data.
//
// The reader takes untrusted files: counts, string and array lengths, dimensions, types and
// offsets are checked against the format's limits and the file's size before anything is
// allocated, and every error names the file (and the key or tensor at fault). Tensors are read
// and dequantised one at a time; the writer streams tensor by tensor after writing the header.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bellows::formats {

enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12
};

// One metadata value. Integers of every width live in `u` (unsigned) or `i` (signed), floats in
// `f`; arrays hold their element type and elements (nested arrays allowed).
struct GgufValue {
  GgufType type = GgufType::u32;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  GgufType elem_type = GgufType::u8;  // arrays only
  std::vector<GgufValue> arr;         // arrays only

  static GgufValue make_u32(uint32_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_bool(bool v);
  static GgufValue make_string(std::string v);
  static GgufValue make_string_array(const std::vector<std::string>& v);
  static GgufValue make_i32_array(const std::vector<int32_t>& v);
  static GgufValue make_f32_array(const std::vector<float>& v);

  // Any integer type as uint64 / a float type as double; RuntimeError naming `what` otherwise
  // (or for a negative signed value in as_uint).
  uint64_t as_uint(const std::string& what) const;
  double as_double(const std::string& what) const;
  const std::string& as_string(const std::string& what) const;
};

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// ggml tensor types that are read (all) and written (f32, f16, bf16, q8_0).
enum class GgmlType : uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, q4_k = 12, q5_k = 13, q6_k = 14, bf16 = 30
};
const char* ggml_type_name(GgmlType t);  // "F32", "Q8_0", ...
// Elements per block and bytes per block; {0, 0} for a type id this code does not know.
struct GgmlBlock { uint64_t elems = 0, bytes = 0; };
GgmlBlock ggml_block(uint32_t type_id);

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] fastest-varying
  GgmlType type = GgmlType::f32;
  uint64_t offset = 0;       // relative to the start of the data section
  uint64_t nbytes = 0;
  uint64_t numel() const;
};

class GgufReader {
 public:
  // Opens and validates; throws RuntimeError "PATH: ..." naming the key or tensor at fault.
  explicit GgufReader(const std::string& path);
  ~GgufReader();
  GgufReader(const GgufReader&) = delete;
  GgufReader& operator=(const GgufReader&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const GgufMetadata& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;

  // The tensor's elements as float32 into out[numel()], dequantising quantised types. Reads with
  // pread and keeps no state, so several threads may read tensors of one reader at once.
  void read_f32(const GgufTensorInfo& t, float* out) const;

 private:
  void parse();

  std::string path_;
  int fd_ = -1;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_start_ = 0;
  uint64_t file_size_ = 0;
  GgufMetadata kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;  // name -> index in tensors_
};

// Writes GGUF v3: the metadata and every tensor's description (name, ne, type) are given up
// front; write_f32() is then called once per tensor in that order, converting (quantising) to
// the tensor's type. Alignment: general.alignment when the metadata sets it (u32), else 32.
// The constructor throws UsageError naming the tensor or key for what cannot be written (a type
// other than F32/F16/BF16/Q8_0, a Q8_0 tensor whose ne[0] is not a multiple of 32, an empty,
// over-long or repeated name, 0 or more than 4 dims, a repeated key, a bad general.alignment);
// write_f32 throws RuntimeError for a NaN or infinity in a Q8_0 tensor, and for I/O errors.
// The caller writes into a temporary path and renames on success (io::SafeOutput).
class GgufWriter {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;  // ggml order
    GgmlType type = GgmlType::f32;
  };
  GgufWriter(const std::string& path, const GgufMetadata& metadata, const std::vector<Tensor>& tensors);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  void write_f32(const float* data);  // the next tensor's numel floats
  void close();                       // InternalError unless every tensor was written
  uint64_t file_size() const { return file_size_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t alignment_ = 32;
  uint64_t data_start_ = 0;
  size_t next_ = 0;
  uint64_t file_size_ = 0;
};

}  // namespace bellows::formats
