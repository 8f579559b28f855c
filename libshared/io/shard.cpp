#include "io/shard.hpp"

#include <limits>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/version.hpp"
#include "io/zstd_filter.hpp"
#include "log/log.hpp"

namespace bellows::io {
namespace {

// The dataset creation properties every bellows dataset gets: chunked, zstd, then Fletcher32.
// Fletcher32 runs last on write and first on read, so it checks the bytes as stored on disk and
// a flipped bit is reported as corruption before the decompressor sees it.
h5::Handle chunked_dcpl(const std::vector<hsize_t>& chunk, int zstd_level) {
  h5::Handle dcpl = h5::check(H5Pcreate(H5P_DATASET_CREATE), "dataset properties");
  h5::check_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "chunk layout");
  unsigned level = static_cast<unsigned>(zstd_level);
  h5::check_status(H5Pset_filter(dcpl.get(), h5::kZstdFilterId, H5Z_FLAG_MANDATORY, 1, &level), "zstd filter");
  h5::check_status(H5Pset_fletcher32(dcpl.get()), "fletcher32 filter");
  return dcpl;
}

hsize_t chunk_rows_for(size_t row_bytes) {
  return static_cast<hsize_t>(std::max<size_t>(1, kTargetChunkBytes / std::max<size_t>(1, row_bytes)));
}

size_t product(const std::vector<uint64_t>& v) {
  size_t p = 1;
  for (uint64_t x : v) p *= static_cast<size_t>(x);
  return p;
}

}  // namespace

struct ShardWriter::Appendable {
  h5::Handle ds;
  h5::DType dtype = h5::DType::u8;
  std::vector<uint64_t> row_shape;
  size_t row_elems = 1;
  hsize_t chunk_rows = 1;
  uint64_t rows_written = 0;
  std::vector<uint8_t> buffer;  // whole rows not yet written, at most chunk_rows of them
};

ShardWriter::ShardWriter(const std::string& path, const std::string& kind, const Provenance& prov)
    : path_(path), schema_(schema::get(kind)) {
  // Token ids are close to random bits to zstd: level 1 stores them about 5% larger than
  // level 3 at twice the speed, which keeps packing cheap next to tokenizing.
  if (kind.rfind("tokens_", 0) == 0) zstd_level_ = 1;
  // Trained fp32 weights are near-random bits to zstd (a few percent saved at any level), so
  // checkpoints use its fastest mode: checkpoints are written and read near disk speed
  // (bench/convert: export 3x faster than at level 1), Fletcher32 still checks every chunk.
  if (kind == "checkpoint") zstd_level_ = -5;
  h5::init_library();
  file_ = h5::check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), path + ": cannot create HDF5 file");
  BuildInfo b = build_info();
  h5::write_attr(file_.get(), "schema", schema_.name);
  h5::write_attr(file_.get(), "schema_version", schema_.version);
  h5::write_attr(file_.get(), "bellows_version", b.version);
  h5::write_attr(file_.get(), "git_hash", b.git_hash);
  h5::write_attr(file_.get(), "tool", prov.tool);
  h5::write_attr(file_.get(), "created_utc", log::utc_timestamp());
  h5::write_attr(file_.get(), "config", prov.config.dump());
  h5::write_attr(file_.get(), "inputs", nlohmann::json(prov.inputs).dump());
}

ShardWriter::~ShardWriter() = default;

const schema::DatasetSpec& ShardWriter::spec_for(const std::string& name) const {
  const schema::DatasetSpec* d = schema::find_dataset(schema_, name);
  if (!d) throw InternalError("dataset '" + name + "' is not in schema '" + schema_.name + "'");
  return *d;
}

void ShardWriter::declare(const std::string& name, std::vector<uint64_t> row_shape) {
  BELLOWS_CHECK(!appendables_.count(name), "dataset '" + name + "' declared twice");
  const schema::DatasetSpec& spec = spec_for(name);
  auto a = std::make_unique<Appendable>();
  a->dtype = spec.dtype;
  a->row_shape = std::move(row_shape);
  a->row_elems = product(a->row_shape);
  a->chunk_rows = chunk_rows_for(a->row_elems * h5::dtype_size(a->dtype));
  std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{a->chunk_rows};
  for (uint64_t d : a->row_shape) {
    dims.push_back(d);
    maxdims.push_back(d);
    chunk.push_back(std::max<hsize_t>(1, d));
  }
  h5::Handle space = h5::check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()), "dataspace");
  h5::Handle dcpl = chunked_dcpl(chunk, zstd_level_);
  h5::make_parent_groups(file_.get(), name);
  a->ds = h5::check(H5Dcreate2(file_.get(), name.c_str(), h5::file_type(a->dtype), space.get(), H5P_DEFAULT,
                               dcpl.get(), H5P_DEFAULT),
                    path_ + ": cannot create dataset '" + name + "'");
  appendables_.emplace(name, std::move(a));
}

void ShardWriter::append_raw(const std::string& name, h5::DType t, const void* data, size_t count) {
  auto it = appendables_.find(name);
  BELLOWS_CHECK(it != appendables_.end(), "append to undeclared dataset '" + name + "'");
  Appendable& a = *it->second;
  BELLOWS_CHECK(t == a.dtype, "dataset '" + name + "' is " + h5::dtype_name(a.dtype) + ", appended " + h5::dtype_name(t));
  BELLOWS_CHECK(count % a.row_elems == 0, "append of a partial row to '" + name + "'");
  const auto* p = static_cast<const uint8_t*>(data);
  size_t bytes = count * h5::dtype_size(t);
  size_t chunk_bytes = a.chunk_rows * a.row_elems * h5::dtype_size(t);
  while (bytes > 0) {
    size_t take = std::min(bytes, chunk_bytes - a.buffer.size());
    a.buffer.insert(a.buffer.end(), p, p + take);
    p += take;
    bytes -= take;
    if (a.buffer.size() == chunk_bytes) flush(a);
  }
}

void ShardWriter::flush(Appendable& a) {
  if (a.buffer.empty()) return;
  size_t row_bytes = a.row_elems * h5::dtype_size(a.dtype);
  hsize_t n = a.buffer.size() / row_bytes;
  std::vector<hsize_t> dims{a.rows_written + n}, start{a.rows_written}, count{n};
  for (uint64_t d : a.row_shape) {
    dims.push_back(d);
    start.push_back(0);
    count.push_back(d);
  }
  h5::check_status(H5Dset_extent(a.ds.get(), dims.data()), path_ + ": cannot extend dataset");
  h5::Handle fspace = h5::check(H5Dget_space(a.ds.get()), "dataspace");
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  h5::Handle mspace = h5::check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), "dataspace");
  h5::check_status(H5Dwrite(a.ds.get(), h5::native_type(a.dtype), mspace.get(), fspace.get(), H5P_DEFAULT, a.buffer.data()),
                   path_ + ": cannot write");
  a.rows_written += n;
  a.buffer.clear();
}

uint64_t ShardWriter::rows(const std::string& name) const {
  auto it = appendables_.find(name);
  BELLOWS_CHECK(it != appendables_.end(), "rows() of undeclared dataset '" + name + "'");
  const Appendable& a = *it->second;
  return a.rows_written + a.buffer.size() / (a.row_elems * h5::dtype_size(a.dtype));
}

void ShardWriter::write_tensor_raw(const std::string& name, h5::DType t, const std::vector<uint64_t>& shape,
                                   const void* data) {
  const schema::DatasetSpec& spec = spec_for(name);
  BELLOWS_CHECK(t == spec.dtype, "dataset '" + name + "' is " + h5::dtype_name(spec.dtype) + ", written " + h5::dtype_name(t));
  BELLOWS_CHECK(!shape.empty(), "tensor '" + name + "' must have rank >= 1 (scalars cannot be chunked)");
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  std::vector<hsize_t> chunk(dims.size());
  size_t row_bytes = h5::dtype_size(t);
  for (size_t i = 1; i < dims.size(); ++i) {
    chunk[i] = std::max<hsize_t>(1, dims[i]);
    row_bytes *= chunk[i];
  }
  chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(std::max<hsize_t>(1, dims[0]), chunk_rows_for(row_bytes)));
  h5::Handle space = h5::check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "dataspace");
  h5::Handle dcpl = chunked_dcpl(chunk, zstd_level_);
  h5::make_parent_groups(file_.get(), name);
  h5::Handle ds = h5::check(H5Dcreate2(file_.get(), name.c_str(), h5::file_type(t), space.get(), H5P_DEFAULT, dcpl.get(),
                                       H5P_DEFAULT),
                            path_ + ": cannot create dataset '" + name + "'");
  if (product(shape) > 0)
    h5::check_status(H5Dwrite(ds.get(), h5::native_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                     path_ + ": cannot write dataset '" + name + "'");
}

void ShardWriter::write_virtual_tensor(const std::string& name, const std::vector<uint64_t>& shape,
                                       const std::vector<VirtualPiece>& pieces) {
  const schema::DatasetSpec& spec = spec_for(name);
  BELLOWS_CHECK(spec.dtype == h5::DType::f32, "virtual dataset '" + name + "' must be float32");
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  h5::Handle space = h5::check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "dataspace");
  h5::Handle dcpl = h5::check(H5Pcreate(H5P_DATASET_CREATE), "dataset properties");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  h5::check_status(H5Pset_fill_value(dcpl.get(), H5T_NATIVE_FLOAT, &nan), "fill value");
  for (const auto& p : pieces) {
    BELLOWS_CHECK(p.offset.size() == dims.size() && p.count.size() == dims.size(), "virtual piece of another rank");
    std::vector<hsize_t> off(p.offset.begin(), p.offset.end()), cnt(p.count.begin(), p.count.end());
    h5::Handle vspace = h5::check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "dataspace");
    h5::check_status(H5Sselect_hyperslab(vspace.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr),
                     "virtual block");
    h5::Handle sspace = h5::check(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr), "dataspace");
    h5::check_status(H5Pset_virtual(dcpl.get(), vspace.get(), p.file.c_str(), p.dataset.c_str(), sspace.get()),
                     path_ + ": cannot map '" + name + "' to " + p.file);
  }
  h5::make_parent_groups(file_.get(), name);
  h5::check(H5Dcreate2(file_.get(), name.c_str(), h5::file_type(h5::DType::f32), space.get(), H5P_DEFAULT, dcpl.get(),
                       H5P_DEFAULT),
            path_ + ": cannot create virtual dataset '" + name + "'");
}

void ShardWriter::set_attr(const std::string& name, const std::string& v) { h5::write_attr(file_.get(), name, v); }
void ShardWriter::set_attr(const std::string& name, int64_t v) { h5::write_attr(file_.get(), name, v); }
void ShardWriter::set_attr(const std::string& name, uint64_t v) { h5::write_attr(file_.get(), name, v); }
void ShardWriter::set_attr(const std::string& name, double v) { h5::write_attr(file_.get(), name, v); }

void ShardWriter::close() {
  if (closed_) return;
  for (auto& [name, a] : appendables_) flush(*a);
  std::vector<std::string> problems = schema::validate(file_.get(), schema_, /*strict=*/true);
  if (!problems.empty()) throw InternalError(path_ + ": written file does not conform to schema '" + schema_.name + "': " + problems[0]);
  appendables_.clear();
  h5::check_status(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), path_ + ": cannot flush");
  file_.reset();
  closed_ = true;
}

// ---------------------------------------------------------------------------------------------

ShardReader::ShardReader(const std::string& path, const std::string& kind) { open(path, kind); }

ShardReader ShardReader::open_any(const std::string& path) {
  ShardReader r;
  r.open(path, "");
  return r;
}

void ShardReader::open(const std::string& path, const std::string& expected_kind) {
  h5::init_library();
  path_ = path;
  htri_t is_h5 = H5Fis_hdf5(path.c_str());
  if (is_h5 < 0) throw RuntimeError(path + ": cannot open (missing or unreadable)");
  if (is_h5 == 0) throw RuntimeError(path + ": not an HDF5 file");
  file_ = h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path + ": cannot open HDF5 file");
  kind_ = schema::file_kind(file_.get());
  if (kind_.empty()) throw RuntimeError(path + ": not a bellows file (no 'schema' attribute)");
  std::vector<std::string> known = schema::names();
  if (std::find(known.begin(), known.end(), kind_) == known.end())
    throw RuntimeError(path + ": unknown file kind '" + kind_ + "' (this build knows: " + nlohmann::json(known).dump() + ")");
  if (!expected_kind.empty() && kind_ != expected_kind)
    throw RuntimeError(path + ": is a '" + kind_ + "' file, expected '" + expected_kind + "'");
  const schema::Schema& s = schema::get(kind_);
  if (!h5::has_attr(file_.get(), "schema_version") || h5::attr_kind(file_.get(), "schema_version") == "string")
    throw RuntimeError(path + ": missing or malformed 'schema_version' attribute");
  version_ = h5::read_attr_int(file_.get(), "schema_version");
  if (version_ > s.version)
    throw RuntimeError(path + ": '" + kind_ + "' version " + std::to_string(version_) +
                       " was written by a newer bellows; this build reads up to version " + std::to_string(s.version));
  std::vector<std::string> problems = schema::validate(file_.get(), s, /*strict=*/false);
  if (!problems.empty()) {
    std::string more = problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more problems)" : "";
    throw RuntimeError(path + ": does not conform to schema '" + kind_ + "': " + problems[0] + more);
  }
}

bool ShardReader::has_attr(const std::string& name) const { return h5::has_attr(file_.get(), name); }

std::string ShardReader::attr_string(const std::string& name) const {
  try {
    return h5::read_attr_string(file_.get(), name);
  } catch (const RuntimeError& e) {
    throw RuntimeError(path_ + ": " + e.what());
  }
}

int64_t ShardReader::attr_int(const std::string& name) const {
  try {
    return h5::read_attr_int(file_.get(), name);
  } catch (const RuntimeError& e) {
    throw RuntimeError(path_ + ": " + e.what());
  }
}

uint64_t ShardReader::attr_uint(const std::string& name) const {
  int64_t v = attr_int(name);
  if (v < 0) throw RuntimeError(path_ + ": attribute '" + name + "' is negative");
  return static_cast<uint64_t>(v);
}

double ShardReader::attr_double(const std::string& name) const {
  try {
    return h5::read_attr_double(file_.get(), name);
  } catch (const RuntimeError& e) {
    throw RuntimeError(path_ + ": " + e.what());
  }
}

std::vector<std::string> ShardReader::datasets() const { return h5::list_datasets(file_.get()); }

std::vector<uint64_t> ShardReader::shape(const std::string& name) const {
  h5::Handle ds = h5::check(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), path_ + ": no dataset '" + name + "'");
  h5::Handle space = h5::check(H5Dget_space(ds.get()), path_ + ": dataset '" + name + "'");
  int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return std::vector<uint64_t>(dims.begin(), dims.end());
}

void ShardReader::read_rows_raw(const std::string& name, h5::DType t, uint64_t first, uint64_t count,
                                const std::function<void*(size_t)>& alloc) const {
  std::string where = path_ + ": dataset '" + name + "'";
  h5::Handle ds = h5::check(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), path_ + ": no dataset '" + name + "'");
  h5::Handle type = h5::check(H5Dget_type(ds.get()), where);
  h5::DType have;
  if (!h5::dtype_of(type.get(), &have) || have != t)
    throw InternalError(where + " read as " + h5::dtype_name(t) + " but stored as another type");
  h5::Handle fspace = h5::check(H5Dget_space(ds.get()), where);
  int rank = H5Sget_simple_extent_ndims(fspace.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(fspace.get(), dims.data(), nullptr);
  if (dims.empty()) throw RuntimeError(where + ": scalar dataset, expected an array");
  if (first + count > dims[0] || first + count < first)
    throw RuntimeError(where + ": rows " + std::to_string(first) + ".." + std::to_string(first + count) +
                       " out of range (it has " + std::to_string(dims[0]) + ")");
  std::vector<hsize_t> start(dims.size(), 0), cnt = dims;
  start[0] = first;
  cnt[0] = count;
  size_t n = 1;
  for (hsize_t c : cnt) n *= static_cast<size_t>(c);
  void* buf = alloc(n);
  if (n == 0) return;
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
  h5::Handle mspace = h5::check(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr), where);
  herr_t st = H5Dread(ds.get(), h5::native_type(t), mspace.get(), fspace.get(), H5P_DEFAULT, buf);
  if (st < 0) {
    std::string e = h5::last_error();
    throw RuntimeError(where + ": cannot read rows " + std::to_string(first) + ".." + std::to_string(first + count) +
                       " (corrupt or truncated file?): " + (e.empty() ? "HDF5 read failed" : e));
  }
}

void ShardReader::read_block_raw(const std::string& name, h5::DType t, const std::vector<uint64_t>& offset,
                                 const std::vector<uint64_t>& count, void* out) const {
  std::string where = path_ + ": dataset '" + name + "'";
  h5::Handle ds = h5::check(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), path_ + ": no dataset '" + name + "'");
  h5::Handle type = h5::check(H5Dget_type(ds.get()), where);
  h5::DType have;
  if (!h5::dtype_of(type.get(), &have) || have != t)
    throw InternalError(where + " read as " + h5::dtype_name(t) + " but stored as another type");
  h5::Handle fspace = h5::check(H5Dget_space(ds.get()), where);
  const int rank = H5Sget_simple_extent_ndims(fspace.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(fspace.get(), dims.data(), nullptr);
  if (dims.size() != offset.size() || dims.size() != count.size())
    throw RuntimeError(where + ": has rank " + std::to_string(dims.size()) + ", read as rank " + std::to_string(offset.size()));
  size_t n = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (offset[i] + count[i] > dims[i])
      throw RuntimeError(where + ": block out of range in dimension " + std::to_string(i));
    n *= static_cast<size_t>(count[i]);
  }
  if (n == 0) return;
  std::vector<hsize_t> start(offset.begin(), offset.end()), cnt(count.begin(), count.end());
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
  h5::Handle mspace = h5::check(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr), where);
  if (H5Dread(ds.get(), h5::native_type(t), mspace.get(), fspace.get(), H5P_DEFAULT, out) < 0) {
    std::string e = h5::last_error();
    throw RuntimeError(where + ": cannot read a block (corrupt, truncated or missing part file?): " +
                       (e.empty() ? "HDF5 read failed" : e));
  }
}

void ShardReader::throw_bad_size(const std::string& name, size_t n, size_t expected) const {
  throw RuntimeError(path_ + ": dataset '" + name + "' has " + std::to_string(n) + " elements, expected " +
                     std::to_string(expected));
}

void ShardReader::throw_bad_offsets(const std::string& col, uint64_t i) const {
  throw RuntimeError(path_ + ": dataset '" + col + "_offsets' decreases at element " + std::to_string(i) + " (corrupt file)");
}

uint64_t ShardReader::total_bytes() const {
  uint64_t total = 0;
  for (const auto& name : datasets()) {
    h5::Handle ds = h5::check(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), path_ + ": dataset '" + name + "'");
    h5::Handle type = h5::check(H5Dget_type(ds.get()), path_);
    size_t n = H5Tget_size(type.get());
    for (uint64_t d : shape(name)) n *= d;
    total += n;
  }
  return total;
}

void ShardReader::verify_all_chunks(const std::function<void(uint64_t)>& on_bytes) const {
  for (const auto& name : datasets()) {
    h5::Handle ds = h5::check(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), path_ + ": dataset '" + name + "'");
    h5::Handle type = h5::check(H5Dget_type(ds.get()), path_);
    h5::DType t;
    if (!h5::dtype_of(type.get(), &t)) continue;  // not ours; validation reports it in strict mode
    std::vector<uint64_t> dims = shape(name);
    if (dims.empty() || dims[0] == 0) continue;
    size_t row_bytes = h5::dtype_size(t);
    for (size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
    uint64_t step = std::max<uint64_t>(1, (16u << 20) / std::max<size_t>(1, row_bytes));
    std::vector<uint8_t> buf;
    for (uint64_t first = 0; first < dims[0]; first += step) {
      uint64_t count = std::min(step, dims[0] - first);
      read_rows_raw(name, t, first, count, [&](size_t n) {
        buf.resize(n * h5::dtype_size(t));
        return static_cast<void*>(buf.data());
      });
      if (on_bytes) on_bytes(count * row_bytes);
    }
  }
}

}  // namespace bellows::io
