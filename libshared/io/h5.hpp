// Thin RAII over the HDF5 C API, and the few typed helpers the shard layer needs.
//
// HDF5's own error printing is switched off; failures become RuntimeError messages that name
// the file and object and end with HDF5's innermost explanation.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bellows::h5 {

// Owns one hid_t and closes it with the right H5*close for its type.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Switches off HDF5's automatic error printing and registers the zstd filter; idempotent.
void init_library();

// HDF5's innermost error description for the last failed call on this thread ("" if none).
std::string last_error();

// Throws RuntimeError("<what>: <HDF5 error>") when id < 0; returns a Handle otherwise.
Handle check(hid_t id, const std::string& what);
void check_status(herr_t status, const std::string& what);

enum class DType { u8, i8, u16, i16, u32, i32, u64, i64, f32, f64 };
DType parse_dtype(const std::string& name);  // "uint8", "int32", "float32", ...
const char* dtype_name(DType t);
size_t dtype_size(DType t);
hid_t native_type(DType t);  // memory type
hid_t file_type(DType t);    // little-endian standard type written to disk
// The DType of a dataset's type, or false when it is none of ours (e.g. strings, compounds).
bool dtype_of(hid_t type, DType* out);

template <class T> constexpr DType dtype_for();
template <> constexpr DType dtype_for<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_for<int8_t>() { return DType::i8; }
template <> constexpr DType dtype_for<uint16_t>() { return DType::u16; }
template <> constexpr DType dtype_for<int16_t>() { return DType::i16; }
template <> constexpr DType dtype_for<uint32_t>() { return DType::u32; }
template <> constexpr DType dtype_for<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_for<uint64_t>() { return DType::u64; }
template <> constexpr DType dtype_for<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_for<float>() { return DType::f32; }
template <> constexpr DType dtype_for<double>() { return DType::f64; }

// Attributes on any object: strings are variable-length UTF-8 (h5py reads them as str).
void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, int64_t value);
void write_attr(hid_t obj, const std::string& name, uint64_t value);
void write_attr(hid_t obj, const std::string& name, double value);
bool has_attr(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name);
int64_t read_attr_int(hid_t obj, const std::string& name);
double read_attr_double(hid_t obj, const std::string& name);
// "string", "int", "uint", "float", or "other".
std::string attr_kind(hid_t obj, const std::string& name);
std::vector<std::string> attr_names(hid_t obj);

// Every dataset below the root, as a path without the leading "/" ("params/wq").
std::vector<std::string> list_datasets(hid_t file);

// Ensures the groups along `path` ("a/b/name" creates a and a/b) exist.
void make_parent_groups(hid_t file, const std::string& path);

}  // namespace bellows::h5
