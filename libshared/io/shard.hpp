// Typed access to bellows HDF5 files of any kind in schemas/.
//
// Every dataset is chunked, zstd-compressed (filter 32015) and Fletcher32-checksummed; every
// file carries the common attributes (schema, version, provenance). The writer validates the
// file strictly against its schema before closing, so a writer bug cannot produce a file the
// readers would refuse; the reader validates on open and names the file in every error.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/h5.hpp"
#include "io/schema.hpp"
#include "io/zstd_filter.hpp"

namespace bellows::io {

// How a file was made; written as the common attributes.
struct Provenance {
  std::string tool;
  nlohmann::json config = nlohmann::json::object();  // effective options
  std::vector<std::string> inputs;
};

// Bytes per chunk we aim for: large enough for zstd to work well and for sequential reads to be
// cheap, small enough that reading one sample decompresses little.
constexpr size_t kTargetChunkBytes = 1 << 20;

class ShardWriter {
 public:
  // Creates `path` (truncating) as a file of kind `kind`. Callers write into a temporary path
  // (see safe_output.hpp); the file becomes visible under its final name only when complete.
  ShardWriter(const std::string& path, const std::string& kind, const Provenance& prov);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // An appendable dataset of rows of `row_shape` (empty for a 1-D dataset). Must be declared
  // before append(); its dtype comes from the schema.
  void declare(const std::string& name, std::vector<uint64_t> row_shape = {});
  // Appends `count` elements (a whole number of rows) to a declared dataset.
  template <class T>
  void append(const std::string& name, const T* data, size_t count) {
    append_raw(name, h5::dtype_for<T>(), data, count);
  }
  template <class T>
  void append(const std::string& name, const std::vector<T>& v) {
    append_raw(name, h5::dtype_for<T>(), v.data(), v.size());
  }
  // A whole dataset of fixed shape in one call (e.g. a checkpoint tensor).
  template <class T>
  void write_tensor(const std::string& name, const std::vector<uint64_t>& shape, const T* data) {
    write_tensor_raw(name, h5::dtype_for<T>(), shape, data);
  }

  // One source of a virtual tensor: the whole dataset `dataset` of `file` (a path relative to
  // this file's directory) fills the block of shape `count` at `offset`.
  struct VirtualPiece {
    std::string file, dataset;
    std::vector<uint64_t> offset, count;
  };
  // A float32 tensor of `shape` whose elements live in other files (an HDF5 virtual dataset):
  // how a checkpoint written in slices by many ranks reads as whole tensors. Elements no piece
  // covers read as NaN, never as plausible zeros.
  void write_virtual_tensor(const std::string& name, const std::vector<uint64_t>& shape,
                            const std::vector<VirtualPiece>& pieces);

  void set_attr(const std::string& name, const std::string& v);
  void set_attr(const std::string& name, const char* v) { set_attr(name, std::string(v)); }
  void set_attr(const std::string& name, int64_t v);
  void set_attr(const std::string& name, uint64_t v);
  void set_attr(const std::string& name, double v);

  // Flushes buffers, validates against the schema (InternalError if our own output does not
  // conform) and closes the file. Without close(), the destructor closes without validating.
  void close();
  const std::string& path() const { return path_; }
  uint64_t rows(const std::string& name) const;

 private:
  struct Appendable;
  void append_raw(const std::string& name, h5::DType t, const void* data, size_t count);
  void write_tensor_raw(const std::string& name, h5::DType t, const std::vector<uint64_t>& shape, const void* data);
  const schema::DatasetSpec& spec_for(const std::string& name) const;
  void flush(Appendable& a);

  std::string path_;
  const schema::Schema& schema_;
  h5::Handle file_;
  std::map<std::string, std::unique_ptr<Appendable>> appendables_;
  int zstd_level_ = h5::kZstdDefaultLevel;
  bool closed_ = false;
};

// Writes a ragged column (<col>_data + <col>_offsets) through a ShardWriter.
template <class T>
class RaggedColumn {
 public:
  RaggedColumn(ShardWriter& w, std::string col) : w_(w), data_(col + "_data"), offsets_(col + "_offsets") {
    w_.declare(data_);
    w_.declare(offsets_);
    uint64_t zero = 0;
    w_.append(offsets_, &zero, 1);
  }
  void add(const T* p, size_t n) {
    w_.append(data_, p, n);
    end_ += n;
    w_.append(offsets_, &end_, 1);
  }

 private:
  ShardWriter& w_;
  std::string data_, offsets_;
  uint64_t end_ = 0;
};

class ShardReader {
 public:
  // Opens `path`, checks it is a `kind` file of a version this build reads, and that it
  // conforms to the schema. Throws RuntimeError naming the file otherwise.
  ShardReader(const std::string& path, const std::string& kind);
  // Opens a bellows file of any kind (checked against its own schema).
  static ShardReader open_any(const std::string& path);

  const std::string& path() const { return path_; }
  const std::string& kind() const { return kind_; }
  int64_t version() const { return version_; }
  hid_t handle() const { return file_.get(); }

  bool has_attr(const std::string& name) const;
  std::string attr_string(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;
  uint64_t attr_uint(const std::string& name) const;
  double attr_double(const std::string& name) const;

  std::vector<std::string> datasets() const;
  std::vector<uint64_t> shape(const std::string& name) const;
  // Rows [first, first+count) along the first dimension, all other dimensions whole.
  template <class T>
  std::vector<T> read_rows(const std::string& name, uint64_t first, uint64_t count) const {
    std::vector<T> out;
    read_rows_raw(name, h5::dtype_for<T>(), first, count, [&out](size_t n) {
      out.resize(n);
      return static_cast<void*>(out.data());
    });
    return out;
  }
  template <class T>
  std::vector<T> read_all(const std::string& name) const {
    std::vector<uint64_t> s = shape(name);
    return read_rows<T>(name, 0, s.empty() ? 1 : s[0]);
  }
  // The whole dataset into caller memory of exactly `count` elements (a tensor streamed into a
  // buffer that is reused from tensor to tensor); RuntimeError naming the file and dataset if
  // the dataset holds another number of elements.
  template <class T>
  void read_into(const std::string& name, T* out, size_t count) const {
    std::vector<uint64_t> s = shape(name);
    read_rows_raw(name, h5::dtype_for<T>(), 0, s.empty() ? 1 : s[0], [&](size_t n) {
      if (n != count) throw_bad_size(name, n, count);
      return static_cast<void*>(out);
    });
  }
  // One element of a ragged column: bytes/values offsets[i] .. offsets[i+1] of <col>_data.
  // The block of shape `count` at `offset` of a dataset, into out[product(count)] (a rank's
  // slice of a checkpoint tensor). RuntimeError naming the file when it is out of range.
  template <class T>
  void read_block(const std::string& name, const std::vector<uint64_t>& offset, const std::vector<uint64_t>& count,
                  T* out) const {
    read_block_raw(name, h5::dtype_for<T>(), offset, count, out);
  }

  template <class T>
  std::vector<T> ragged(const std::string& col, uint64_t i) const {
    std::vector<uint64_t> off = read_rows<uint64_t>(col + "_offsets", i, 2);
    if (off[1] < off[0]) throw_bad_offsets(col, i);
    return read_rows<T>(col + "_data", off[0], off[1] - off[0]);
  }
  std::string ragged_string(const std::string& col, uint64_t i) const {
    std::vector<uint8_t> b = ragged<uint8_t>(col, i);
    return std::string(b.begin(), b.end());
  }

  // Reads every chunk of every dataset, so that each Fletcher32 checksum is verified and each
  // zstd frame decoded. Calls `on_bytes` with the raw bytes read, for progress.
  void verify_all_chunks(const std::function<void(uint64_t)>& on_bytes = nullptr) const;
  // Total uncompressed bytes of all datasets (for progress totals).
  uint64_t total_bytes() const;

 private:
  ShardReader() = default;
  void open(const std::string& path, const std::string& expected_kind);
  void read_block_raw(const std::string& name, h5::DType t, const std::vector<uint64_t>& offset,
                      const std::vector<uint64_t>& count, void* out) const;
  void read_rows_raw(const std::string& name, h5::DType t, uint64_t first, uint64_t count,
                     const std::function<void*(size_t)>& alloc) const;
  [[noreturn]] void throw_bad_offsets(const std::string& col, uint64_t i) const;
  [[noreturn]] void throw_bad_size(const std::string& name, size_t n, size_t expected) const;

  std::string path_, kind_;
  int64_t version_ = 0;
  h5::Handle file_;
};

}  // namespace bellows::io
