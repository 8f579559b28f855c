#include "io/schema.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace bellows::schema {

const std::vector<std::pair<std::string, std::string>>& embedded_schema_files();  // generated

namespace {

using nlohmann::json;

DimSpec parse_dim(const json& j, const std::string& where) {
  DimSpec d;
  if (j.is_number_unsigned()) {
    d.kind = DimSpec::Kind::fixed;
    d.value = j.get<uint64_t>();
    d.text = std::to_string(d.value);
    return d;
  }
  if (!j.is_string()) throw InternalError(where + ": a dimension must be a number or a string");
  d.text = j.get<std::string>();
  if (d.text == "*") return d;
  d.kind = DimSpec::Kind::attr;
  auto plus = d.text.find('+');
  d.attr = d.text.substr(0, plus);
  if (plus != std::string::npos) d.add = std::stoll(d.text.substr(plus + 1));
  return d;
}

struct Registry {
  std::map<std::string, Schema> schemas;
  std::map<std::string, std::string> sources;
};

Schema parse_schema(const std::string& file, const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw InternalError("schemas/" + file + ".json: invalid JSON: " + e.what());
  }
  Schema s;
  try {
    s.name = j.at("schema").get<std::string>();
    s.version = j.at("version").get<int64_t>();
    s.title = j.value("title", "");
    s.description = j.value("description", "");
    for (auto& [name, a] : j.at("attributes").items()) {
      AttrSpec as{name, a.at("type").get<std::string>(), a.value("required", true), a.value("doc", "")};
      static const std::vector<std::string> kTypes = {"string", "json", "int", "uint", "float"};
      if (std::find(kTypes.begin(), kTypes.end(), as.type) == kTypes.end())
        throw InternalError("schemas/" + file + ".json: attribute '" + name + "' has unknown type '" + as.type + "'");
      s.attributes.push_back(as);
    }
    for (auto& [name, d] : j.at("datasets").items()) {
      DatasetSpec ds;
      ds.name = name;
      ds.pattern = name.find('*') != std::string::npos;
      ds.dtype = h5::parse_dtype(d.at("dtype").get<std::string>());
      ds.min_count = d.value("min_count", ds.pattern ? 0 : 1);
      ds.doc = d.value("doc", "");
      const json& shape = d.at("shape");
      if (shape.is_array()) {
        std::vector<DimSpec> dims;
        for (const auto& dim : shape) dims.push_back(parse_dim(dim, "schemas/" + file + ".json: " + name));
        ds.shape = dims;
      } else if (!(shape.is_string() && shape.get<std::string>() == "any")) {
        throw InternalError("schemas/" + file + ".json: " + name + ": shape must be a list or \"any\"");
      }
      s.datasets.push_back(ds);
    }
  } catch (const json::exception& e) {
    throw InternalError("schemas/" + file + ".json: " + e.what());
  }
  if (s.name != file) throw InternalError("schemas/" + file + ".json: names schema '" + s.name + "'");
  return s;
}

const Registry& registry() {
  static Registry reg;
  static std::once_flag once;
  std::call_once(once, [] {
    std::map<std::string, Schema> parsed;
    for (const auto& [file, text] : embedded_schema_files()) {
      parsed.emplace(file, parse_schema(file, text));
      reg.sources.emplace(file, text);
    }
    auto common = parsed.find("common");
    if (common == parsed.end()) throw InternalError("schemas/common.json is missing from the build");
    for (auto& [name, s] : parsed) {
      if (name == "common") continue;
      Schema merged = s;
      merged.attributes = common->second.attributes;
      for (const auto& a : s.attributes) merged.attributes.push_back(a);
      // Attribute names referenced by shapes must exist and be integers.
      for (const auto& d : s.datasets)
        if (d.shape)
          for (const auto& dim : *d.shape)
            if (dim.kind == DimSpec::Kind::attr) {
              auto it = std::find_if(s.attributes.begin(), s.attributes.end(),
                                     [&](const AttrSpec& a) { return a.name == dim.attr; });
              if (it == s.attributes.end() || (it->type != "uint" && it->type != "int"))
                throw InternalError("schemas/" + name + ".json: " + d.name + ": shape refers to '" + dim.attr +
                                    "', which is not an integer attribute");
            }
      reg.schemas.emplace(name, merged);
    }
  });
  return reg;
}

bool attr_type_ok(const std::string& want, const std::string& kind) {
  if (want == "string" || want == "json") return kind == "string";
  if (want == "int") return kind == "int" || kind == "uint";
  if (want == "uint") return kind == "uint" || kind == "int";  // value checked for sign below
  if (want == "float") return kind == "float";
  return false;
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

bool matches(const DatasetSpec& d, const std::string& path) {
  return d.pattern ? fnmatch(d.name.c_str(), path.c_str(), 0) == 0 : d.name == path;
}

const DatasetSpec* find_dataset(const Schema& s, const std::string& path) {
  for (const auto& d : s.datasets)
    if (matches(d, path)) return &d;
  return nullptr;
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& [name, s] : registry().schemas) out.push_back(name);
  return out;
}

const Schema& get(const std::string& name) {
  const auto& r = registry().schemas;
  auto it = r.find(name);
  if (it == r.end()) throw InternalError("unknown file kind '" + name + "'");
  return it->second;
}

const std::string& source(const std::string& name) {
  const auto& r = registry().sources;
  auto it = r.find(name);
  if (it == r.end()) throw InternalError("unknown schema '" + name + "'");
  return it->second;
}

std::string file_kind(hid_t file) {
  if (!h5::has_attr(file, "schema")) return "";
  try {
    return h5::read_attr_string(file, "schema");
  } catch (const RuntimeError&) {
    return "";
  }
}

std::vector<std::string> validate(hid_t file, const Schema& s, bool strict) {
  std::vector<std::string> problems;
  std::map<std::string, int64_t> int_attrs;
  for (const auto& a : s.attributes) {
    if (!h5::has_attr(file, a.name)) {
      if (a.required) problems.push_back("missing attribute '" + a.name + "' (" + a.doc + ")");
      continue;
    }
    std::string kind = h5::attr_kind(file, a.name);
    if (!attr_type_ok(a.type, kind)) {
      problems.push_back("attribute '" + a.name + "' is " + kind + ", schema says " + a.type);
      continue;
    }
    if (a.type == "int" || a.type == "uint") {
      int64_t v = h5::read_attr_int(file, a.name);
      if (a.type == "uint" && v < 0) problems.push_back("attribute '" + a.name + "' is negative");
      int_attrs[a.name] = v;
    } else if (a.type == "json") {
      std::string text = h5::read_attr_string(file, a.name);
      if (!nlohmann::json::accept(text)) problems.push_back("attribute '" + a.name + "' is not valid JSON");
    }
  }
  if (strict) {
    for (const auto& name : h5::attr_names(file)) {
      bool known = std::any_of(s.attributes.begin(), s.attributes.end(), [&](const AttrSpec& a) { return a.name == name; });
      if (!known) problems.push_back("attribute '" + name + "' is not in schema '" + s.name + "'");
    }
  }

  std::vector<std::string> present = h5::list_datasets(file);
  std::vector<uint64_t> counts(s.datasets.size(), 0);
  for (const auto& path : present) {
    const DatasetSpec* spec = find_dataset(s, path);
    if (!spec) {
      if (strict) problems.push_back("dataset '" + path + "' is not in schema '" + s.name + "'");
      continue;
    }
    ++counts[static_cast<size_t>(spec - s.datasets.data())];
    h5::Handle ds = h5::check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), "dataset '" + path + "'");
    h5::Handle type = h5::check(H5Dget_type(ds.get()), "dataset '" + path + "': type");
    h5::DType dt;
    if (!h5::dtype_of(type.get(), &dt) || dt != spec->dtype) {
      problems.push_back("dataset '" + path + "' has type " + (h5::dtype_of(type.get(), &dt) ? h5::dtype_name(dt) : "other") +
                         ", schema says " + h5::dtype_name(spec->dtype));
      continue;
    }
    if (!spec->shape) continue;
    h5::Handle space = h5::check(H5Dget_space(ds.get()), "dataset '" + path + "': space");
    int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    if (dims.size() != spec->shape->size()) {
      problems.push_back("dataset '" + path + "' has rank " + std::to_string(dims.size()) + ", schema says " +
                         std::to_string(spec->shape->size()));
      continue;
    }
    for (size_t i = 0; i < dims.size(); ++i) {
      const DimSpec& d = (*spec->shape)[i];
      if (d.kind == DimSpec::Kind::any) continue;
      int64_t want = 0;
      if (d.kind == DimSpec::Kind::fixed) {
        want = static_cast<int64_t>(d.value);
      } else {
        auto it = int_attrs.find(d.attr);
        if (it == int_attrs.end()) continue;  // already reported as a missing attribute
        want = it->second + d.add;
      }
      if (static_cast<int64_t>(dims[i]) != want)
        problems.push_back("dataset '" + path + "' has shape " + shape_text(dims) + ", but dimension " + std::to_string(i) +
                           " should be " + d.text + " = " + std::to_string(want));
    }
  }
  for (size_t i = 0; i < s.datasets.size(); ++i) {
    const DatasetSpec& d = s.datasets[i];
    if (counts[i] < d.min_count)
      problems.push_back(d.pattern ? "no dataset matches '" + d.name + "' (" + d.doc + ")"
                                   : "missing dataset '" + d.name + "' (" + d.doc + ")");
  }
  return problems;
}

}  // namespace bellows::schema
