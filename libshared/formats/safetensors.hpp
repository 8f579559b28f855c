// safetensors (HF's weight format): u64 header length N, N bytes of JSON, then the tensor bytes.
// The reader takes untrusted files: it checks everything the reference implementation checks
// (header size limit, '{' first, known dtypes, offsets contiguous from 0 without holes or
// overlaps, sizes that agree with shapes, the file ending where the last tensor does, no
// duplicate names) and names the file and tensor in every error. It reads one tensor at a time
// (pread), so converting a model never holds more than a tensor in memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bellows::formats {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;             // "F32", "F16", "BF16", ... as in the header
  std::vector<uint64_t> shape;   // row-major, as in the header
  uint64_t begin = 0, end = 0;   // byte offsets relative to the start of the data buffer
  uint64_t numel() const;
};

// Bytes per element of a safetensors dtype string; 0 for a string the format does not define
// (sub-byte F4/F6 types count as unsupported here).
size_t safetensors_dtype_size(const std::string& dtype);

class SafetensorsReader {
 public:
  // Opens and validates; throws RuntimeError "PATH: ..." (naming the tensor where one is at fault).
  explicit SafetensorsReader(const std::string& path);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // in offset order
  const SafetensorsTensor* find(const std::string& name) const;  // nullptr when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor's elements as float32 into out[numel]: F32, F16, BF16 and F64 are converted;
  // any other dtype is a RuntimeError naming the file, the tensor and its dtype.
  void read_f32(const SafetensorsTensor& t, float* out) const;
  // The tensor's bytes as stored into out[end - begin].
  void read_raw(const SafetensorsTensor& t, void* out) const;

 private:
  void load();
  void check_own(const SafetensorsTensor& t) const;  // InternalError for a tensor not from here

  std::string path_;
  int fd_ = -1;
  uint64_t data_start_ = 0;  // file offset of the data buffer
  uint64_t data_size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file tensor by tensor: every tensor (name, dtype F32/F16/BF16, shape) is
// declared up front, because the header comes first; then write_f32() is called once per tensor,
// in the declared order, converting to its dtype. The declarations' begin/end are ignored: the
// writer lays the tensors out back to back in declaration order. The header is padded with spaces to a multiple
// of 8 bytes (as the reference writer does) and carries {"format": "pt"} plus `metadata`.
// The caller writes into a temporary path and renames on success (io::SafeOutput).
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void write_f32(const float* data);  // the next declared tensor's numel() floats
  void close();                       // InternalError unless every tensor was written
  // Bytes the file will have (header included), known from the declarations alone.
  uint64_t file_size() const { return file_size_; }

 private:
  // Checks the declarations, assigns their offsets and returns the padded header JSON.
  std::string layout_header(const std::map<std::string, std::string>& metadata);

  std::string path_;
  int fd_ = -1;
  std::vector<SafetensorsTensor> tensors_;
  size_t next_ = 0;
  uint64_t data_start_ = 0;
  uint64_t file_size_ = 0;
};

}  // namespace bellows::formats
