// Test helper for the GGUF reference check (tests/python/check_gguf_dequant.py), two modes:
//   gguf-tensors FILE.gguf OUTDIR
//       reads FILE with formats::GgufReader and writes every tensor dequantised to float32 as
//       OUTDIR/<name>.f32 (raw little-endian) plus OUTDIR/index.json:
//         {"version", "alignment", "tensors": [{"name", "ne", "type", "offset", "nbytes"}],
//          "metadata": [{"key", "value"}]}
//       where a value is {"type": "uint32", "value": 5} and an array's value is
//       {"type": "array", "elem_type": "string", "values": [<element values, same form>]}.
//   gguf-tensors --write-sample OUT.gguf [ALIGNMENT]
//       writes with formats::GgufWriter a file with metadata of every value type and F32, F16,
//       BF16 and Q8_0 tensors whose values come from sample_value() below (the Python side
//       recomputes them), plus OUT.gguf.expected.json: the metadata in the form above.
// Errors: a message on stderr, exit 1 (2 for a wrong command line).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "formats/gguf.hpp"

using namespace bellows;
using namespace bellows::formats;
using nlohmann::json;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "gguf-tensors: %s\nusage: gguf-tensors FILE.gguf OUTDIR\n"
               "       gguf-tensors --write-sample OUT.gguf [ALIGNMENT]\n",
               why.c_str());
  std::exit(2);
}

const char* type_name(GgufType t) {
  static const char* const names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                      "bool",  "string", "array",  "uint64", "int64", "float64"};
  return names[static_cast<uint32_t>(t)];
}

json value_json(const GgufValue& v) {
  json j = {{"type", type_name(v.type)}};
  switch (v.type) {
    case GgufType::u8: case GgufType::u16: case GgufType::u32: case GgufType::u64: j["value"] = v.u; break;
    case GgufType::i8: case GgufType::i16: case GgufType::i32: case GgufType::i64: j["value"] = v.i; break;
    case GgufType::f32: case GgufType::f64: j["value"] = v.f; break;
    case GgufType::boolean: j["value"] = v.b; break;
    case GgufType::string: j["value"] = v.s; break;
    case GgufType::array: {
      j["elem_type"] = type_name(v.elem_type);
      json values = json::array();
      for (const auto& e : v.arr) values.push_back(value_json(e));
      j["values"] = std::move(values);
      break;
    }
  }
  return j;
}

json metadata_json(const GgufMetadata& md) {
  json out = json::array();
  for (const auto& [key, v] : md) out.push_back({{"key", key}, {"value", value_json(v)}});
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f.flush()) throw RuntimeError(path + ": cannot write");
}

int dump(const std::string& file, const std::string& outdir) {
  GgufReader r(file);
  std::filesystem::create_directories(outdir);
  json tensors = json::array();
  for (const auto& t : r.tensors()) {
    // Names become file names: refuse the ones that would leave OUTDIR.
    if (t.name.find('/') != std::string::npos || t.name.front() == '.')
      throw RuntimeError(file + ": tensor '" + t.name + "': name unusable as a file name");
    std::vector<float> data(t.numel());
    r.read_f32(t, data.data());
    std::ofstream f(outdir + "/" + t.name + ".f32", std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
    if (!f.flush()) throw RuntimeError(outdir + "/" + t.name + ".f32: cannot write");
    tensors.push_back({{"name", t.name}, {"ne", t.ne}, {"type", ggml_type_name(t.type)}, {"offset", t.offset},
                       {"nbytes", t.nbytes}});
  }
  const json index = {{"version", r.version()},
                      {"alignment", r.alignment()},
                      {"tensors", tensors},
                      {"metadata", metadata_json(r.metadata())}};
  write_text(outdir + "/index.json", index.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
  return 0;
}

// The sample tensors' values, exact in float32 (small integers over 16 times 1..3, plus a
// multiple of 2^-12), so that Python recomputes them bit for bit. Tensor `t` (its index), element
// i (flat, ggml order), row length ne0. Tensor 3's second row starts with a zero block (a Q8_0
// block with scale 0).
float sample_value(int t, uint64_t i, uint64_t ne0) {
  if (t == 3 && i >= ne0 && i < ne0 + 32) return 0.0f;
  const double base = static_cast<double>(static_cast<int64_t>((i * 37 + 11 * static_cast<uint64_t>(t)) % 251) - 125);
  return static_cast<float>(base / 16.0 * static_cast<double>(1 + (i / ne0) % 3) + static_cast<double>(i % 7) / 4096.0);
}

int write_sample(const std::string& out, uint32_t alignment) {
  auto scalar = [](GgufType ty) {
    GgufValue v;
    v.type = ty;
    return v;
  };
  GgufMetadata md;
  md.emplace_back("general.architecture", GgufValue::make_string("llama"));
  if (alignment != 32) md.emplace_back("general.alignment", GgufValue::make_u32(alignment));
  GgufValue v = scalar(GgufType::u8); v.u = 200; md.emplace_back("sample.u8", v);
  v = scalar(GgufType::i8); v.i = -100; md.emplace_back("sample.i8", v);
  v = scalar(GgufType::u16); v.u = 60000; md.emplace_back("sample.u16", v);
  v = scalar(GgufType::i16); v.i = -30000; md.emplace_back("sample.i16", v);
  md.emplace_back("sample.u32", GgufValue::make_u32(4000000000u));
  md.emplace_back("sample.i32", GgufValue::make_i32(-2000000000));
  md.emplace_back("sample.f32", GgufValue::make_f32(1e-5f));
  md.emplace_back("sample.bool", GgufValue::make_bool(true));
  md.emplace_back("sample.string", GgufValue::make_string("caf\xc3\xa9 \xc4\xa0tokens"));
  v = scalar(GgufType::u64); v.u = 18446744073709551615ull; md.emplace_back("sample.u64", v);
  v = scalar(GgufType::i64); v.i = -9223372036854775807ll - 1; md.emplace_back("sample.i64", v);
  v = scalar(GgufType::f64); v.f = 0.1; md.emplace_back("sample.f64", v);
  md.emplace_back("tokenizer.ggml.tokens", GgufValue::make_string_array({"<s>", "</s>", "\xc4\xa0the", "", "a b"}));
  md.emplace_back("tokenizer.ggml.token_type", GgufValue::make_i32_array({3, 3, 1, 1, 1}));
  md.emplace_back("tokenizer.ggml.scores", GgufValue::make_f32_array({0.0f, -1.5f, 3.25f}));
  GgufValue bools = scalar(GgufType::array);
  bools.elem_type = GgufType::boolean;
  bools.arr = {GgufValue::make_bool(false), GgufValue::make_bool(true)};
  md.emplace_back("sample.bools", bools);
  GgufValue u64s = scalar(GgufType::array);
  u64s.elem_type = GgufType::u64;
  for (uint64_t x : {0ull, 1ull << 60}) {
    GgufValue e = scalar(GgufType::u64);
    e.u = x;
    u64s.arr.push_back(e);
  }
  md.emplace_back("sample.u64s", u64s);
  GgufValue nested = scalar(GgufType::array);
  nested.elem_type = GgufType::array;
  nested.arr = {GgufValue::make_i32_array({1, 2, 3}), GgufValue::make_i32_array({-4})};
  md.emplace_back("sample.nested", nested);
  GgufValue nested_strings = scalar(GgufType::array);
  nested_strings.elem_type = GgufType::array;
  nested_strings.arr = {GgufValue::make_string_array({"x", "yz"}), GgufValue::make_string_array({"w"})};
  md.emplace_back("sample.nested_strings", nested_strings);

  const std::vector<GgufWriter::Tensor> tensors{{"sample.f32", {7, 3}, GgmlType::f32},
                                                {"sample.f16", {5, 2, 3}, GgmlType::f16},
                                                {"sample.bf16", {9}, GgmlType::bf16},
                                                {"sample.q8_0", {64, 3}, GgmlType::q8_0},
                                                {"sample.q8_0_4d", {32, 1, 2, 2}, GgmlType::q8_0}};
  GgufWriter w(out, md, tensors);
  for (size_t t = 0; t < tensors.size(); ++t) {
    uint64_t n = 1;
    for (uint64_t d : tensors[t].ne) n *= d;
    std::vector<float> data(n);
    for (uint64_t i = 0; i < n; ++i) data[i] = sample_value(static_cast<int>(t), i, tensors[t].ne[0]);
    w.write_f32(data.data());
  }
  w.close();
  write_text(out + ".expected.json", json({{"alignment", alignment}, {"metadata", metadata_json(md)}}).dump(1) + "\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args[0] == "--write-sample") {
      if (args.size() != 2 && args.size() != 3) usage("--write-sample takes OUT.gguf [ALIGNMENT]");
      uint32_t alignment = 32;
      if (args.size() == 3) {
        try {
          alignment = static_cast<uint32_t>(std::stoul(args[2]));
        } catch (const std::exception&) {
          usage("ALIGNMENT must be a number");
        }
      }
      return write_sample(args[1], alignment);
    }
    if (args.size() != 2) usage("expected FILE.gguf OUTDIR");
    return dump(args[0], args[1]);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "gguf-tensors: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gguf-tensors: %s\n", e.what());
    return 1;
  }
}
