// The file kinds of schemas/*.json, embedded at build time, and the check of an HDF5 file
// against one of them. One description per kind is the single source of truth: writers are
// validated against it before a file is closed, readers before a file is used.
#pragma once

#include <hdf5.h>

#include <optional>
#include <string>
#include <vector>

#include "io/h5.hpp"

namespace bellows::schema {

struct AttrSpec {
  std::string name;
  std::string type;  // string | json | int | uint | float
  bool required = true;
  std::string doc;
};

// One dimension of a dataset's shape: any size, a fixed size, or an attribute's value + offset.
struct DimSpec {
  enum class Kind { any, fixed, attr } kind = Kind::any;
  uint64_t value = 0;
  std::string attr;
  int64_t add = 0;
  std::string text;  // as written in the schema, for messages
};

struct DatasetSpec {
  std::string name;  // exact path, or a glob with '*' (matches across '/')
  bool pattern = false;
  h5::DType dtype = h5::DType::u8;
  std::optional<std::vector<DimSpec>> shape;  // nullopt: any rank
  uint64_t min_count = 1;  // patterns: how many datasets must match; exact names: 1 = required
  std::string doc;
};

struct Schema {
  std::string name;
  int64_t version = 0;
  std::string title, description;
  std::vector<AttrSpec> attributes;  // common attributes first
  std::vector<DatasetSpec> datasets;
};

// All file kinds (not "common"), sorted by name.
std::vector<std::string> names();
// The kind called `name` with the common attributes merged in; InternalError if unknown.
const Schema& get(const std::string& name);
// The raw JSON text of schemas/<name>.json as embedded in this build.
const std::string& source(const std::string& name);

// Whether dataset `path` is described by `d` (exact name, or glob where '*' may cross '/').
bool matches(const DatasetSpec& d, const std::string& path);
// The spec describing dataset `path` in `s`, or nullptr.
const DatasetSpec* find_dataset(const Schema& s, const std::string& path);

// Problems found in `file` against `s`; empty when it conforms. `strict` also reports
// datasets and attributes the schema does not describe (used on our own writers' output).
std::vector<std::string> validate(hid_t file, const Schema& s, bool strict);

// Opens nothing: reads the "schema" attribute of an open file ("" when absent).
std::string file_kind(hid_t file);

}  // namespace bellows::schema
