#include "io/h5.hpp"

#include <mutex>

#include "core/error.hpp"
#include "io/zstd_filter.hpp"

namespace bellows::h5 {

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = H5I_INVALID_HID;
}

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    register_zstd_filter();
  });
}

namespace {

herr_t collect_error(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  // The walk goes from the innermost error outwards; the innermost says what really failed.
  if (n == 0 && err->desc) *out = err->desc;
  if (n == 0 && (!err->desc || !*err->desc)) {
    char msg[256] = {0};
    H5Eget_msg(err->min_num, nullptr, msg, sizeof msg);
    *out = msg;
  }
  return 0;
}

}  // namespace

std::string last_error() {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error, &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

Handle check(hid_t id, const std::string& what) {
  if (id < 0) {
    std::string e = last_error();
    throw RuntimeError(what + (e.empty() ? "" : ": " + e));
  }
  return Handle(id);
}

void check_status(herr_t status, const std::string& what) {
  if (status < 0) {
    std::string e = last_error();
    throw RuntimeError(what + (e.empty() ? "" : ": " + e));
  }
}

DType parse_dtype(const std::string& n) {
  if (n == "uint8") return DType::u8;
  if (n == "int8") return DType::i8;
  if (n == "uint16") return DType::u16;
  if (n == "int16") return DType::i16;
  if (n == "uint32") return DType::u32;
  if (n == "int32") return DType::i32;
  if (n == "uint64") return DType::u64;
  if (n == "int64") return DType::i64;
  if (n == "float32") return DType::f32;
  if (n == "float64") return DType::f64;
  throw InternalError("unknown dtype name '" + n + "'");
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::u8: return "uint8";
    case DType::i8: return "int8";
    case DType::u16: return "uint16";
    case DType::i16: return "int16";
    case DType::u32: return "uint32";
    case DType::i32: return "int32";
    case DType::u64: return "uint64";
    case DType::i64: return "int64";
    case DType::f32: return "float32";
    case DType::f64: return "float64";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::u8: case DType::i8: return 1;
    case DType::u16: case DType::i16: return 2;
    case DType::u32: case DType::i32: case DType::f32: return 4;
    case DType::u64: case DType::i64: case DType::f64: return 8;
  }
  return 0;
}

hid_t native_type(DType t) {
  switch (t) {
    case DType::u8: return H5T_NATIVE_UINT8;
    case DType::i8: return H5T_NATIVE_INT8;
    case DType::u16: return H5T_NATIVE_UINT16;
    case DType::i16: return H5T_NATIVE_INT16;
    case DType::u32: return H5T_NATIVE_UINT32;
    case DType::i32: return H5T_NATIVE_INT32;
    case DType::u64: return H5T_NATIVE_UINT64;
    case DType::i64: return H5T_NATIVE_INT64;
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f64: return H5T_NATIVE_DOUBLE;
  }
  return H5I_INVALID_HID;
}

hid_t file_type(DType t) {
  switch (t) {
    case DType::u8: return H5T_STD_U8LE;
    case DType::i8: return H5T_STD_I8LE;
    case DType::u16: return H5T_STD_U16LE;
    case DType::i16: return H5T_STD_I16LE;
    case DType::u32: return H5T_STD_U32LE;
    case DType::i32: return H5T_STD_I32LE;
    case DType::u64: return H5T_STD_U64LE;
    case DType::i64: return H5T_STD_I64LE;
    case DType::f32: return H5T_IEEE_F32LE;
    case DType::f64: return H5T_IEEE_F64LE;
  }
  return H5I_INVALID_HID;
}

bool dtype_of(hid_t type, DType* out) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    if (size == 4) *out = DType::f32;
    else if (size == 8) *out = DType::f64;
    else return false;
    return true;
  }
  if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    switch (size) {
      case 1: *out = is_signed ? DType::i8 : DType::u8; return true;
      case 2: *out = is_signed ? DType::i16 : DType::u16; return true;
      case 4: *out = is_signed ? DType::i32 : DType::u32; return true;
      case 8: *out = is_signed ? DType::i64 : DType::u64; return true;
      default: return false;
    }
  }
  return false;
}

namespace {

void write_scalar_attr(hid_t obj, const std::string& name, hid_t ftype, hid_t mtype, const void* value) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Handle space = check(H5Screate(H5S_SCALAR), "attribute '" + name + "': dataspace");
  Handle attr = check(H5Acreate2(obj, name.c_str(), ftype, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                      "cannot create attribute '" + name + "'");
  check_status(H5Awrite(attr.get(), mtype, value), "cannot write attribute '" + name + "'");
}

}  // namespace

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = check(H5Tcopy(H5T_C_S1), "string type");
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  write_scalar_attr(obj, name, type.get(), type.get(), &p);
}

void write_attr(hid_t obj, const std::string& name, int64_t value) {
  write_scalar_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void write_attr(hid_t obj, const std::string& name, uint64_t value) {
  write_scalar_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

void write_attr(hid_t obj, const std::string& name, double value) {
  write_scalar_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string attr_kind(hid_t obj, const std::string& name) {
  Handle attr = check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "cannot open attribute '" + name + "'");
  Handle type = check(H5Aget_type(attr.get()), "attribute '" + name + "': type");
  switch (H5Tget_class(type.get())) {
    case H5T_STRING: return "string";
    case H5T_INTEGER: return H5Tget_sign(type.get()) == H5T_SGN_2 ? "int" : "uint";
    case H5T_FLOAT: return "float";
    default: return "other";
  }
}

std::string read_attr_string(hid_t obj, const std::string& name) {
  Handle attr = check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "cannot open attribute '" + name + "'");
  Handle ftype = check(H5Aget_type(attr.get()), "attribute '" + name + "': type");
  if (H5Tget_class(ftype.get()) != H5T_STRING) throw RuntimeError("attribute '" + name + "' is not a string");
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle mtype = check(H5Tcopy(H5T_C_S1), "string type");
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    char* p = nullptr;
    check_status(H5Aread(attr.get(), mtype.get(), &p), "cannot read attribute '" + name + "'");
    std::string s = p ? p : "";
    Handle space = check(H5Aget_space(attr.get()), "attribute space");
    H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, &p);
    return s;
  }
  size_t n = H5Tget_size(ftype.get());
  std::string s(n, '\0');
  check_status(H5Aread(attr.get(), ftype.get(), s.data()), "cannot read attribute '" + name + "'");
  s.resize(s.find('\0') == std::string::npos ? n : s.find('\0'));
  return s;
}

int64_t read_attr_int(hid_t obj, const std::string& name) {
  Handle attr = check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "cannot open attribute '" + name + "'");
  Handle type = check(H5Aget_type(attr.get()), "attribute '" + name + "': type");
  if (H5Tget_class(type.get()) != H5T_INTEGER) throw RuntimeError("attribute '" + name + "' is not an integer");
  int64_t v = 0;
  check_status(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), "cannot read attribute '" + name + "'");
  return v;
}

double read_attr_double(hid_t obj, const std::string& name) {
  Handle attr = check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "cannot open attribute '" + name + "'");
  double v = 0;
  check_status(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v), "cannot read attribute '" + name + "'");
  return v;
}

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> out;
  H5O_info_t info;
  check_status(H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS), "object info");
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    ssize_t n = H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) continue;
    std::string name(static_cast<size_t>(n), '\0');
    H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), static_cast<size_t>(n) + 1, H5P_DEFAULT);
    out.push_back(name);
  }
  return out;
}

namespace {

herr_t visit_dataset(hid_t, const char* name, const H5O_info_t* info, void* data) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

std::vector<std::string> list_datasets(hid_t file) {
  std::vector<std::string> out;
  check_status(H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit_dataset, &out, H5O_INFO_BASIC), "listing datasets");
  return out;
}

void make_parent_groups(hid_t file, const std::string& path) {
  size_t pos = 0;
  while ((pos = path.find('/', pos)) != std::string::npos) {
    std::string g = path.substr(0, pos);
    if (H5Lexists(file, g.c_str(), H5P_DEFAULT) <= 0)
      check(H5Gcreate2(file, g.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "cannot create group '" + g + "'");
    ++pos;
  }
}

}  // namespace bellows::h5
