#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "formats/gguf.hpp"
#include "formats/quant.hpp"
#include "test_util.hpp"

using namespace bellows;
using namespace bellows::formats;
using bellows::testing::runtime_error_of;
using bellows::testing::TempDir;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// Hand-built GGUF bytes for the rejection tests: each test writes exactly the field it breaks.
struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& u8(uint8_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    b += s;
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b += "GGUF";
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  // key, value type 4 (uint32), value
  Bytes& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  Bytes& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad(size_t alignment) {
    b.resize((b.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.append(n, '\0');
    return *this;
  }
};

// The message of the RuntimeError that opening `bytes` as a GGUF file throws ("" when none).
std::string open_error(const TempDir& t, const std::string& bytes, const std::string& name = "bad.gguf") {
  spit(t / name, bytes);
  return runtime_error_of([&] { GgufReader r(t / name); });
}

// Round to fp16 precision without formats/half (normal range only, which the test data stays
// in): 11 significant bits, ties to even as the current rounding mode does.
float round_to_f16(float x) {
  if (x == 0.0f) return 0.0f;
  int e;
  std::frexp(x, &e);
  const double scale = std::ldexp(1.0, 11 - e);
  return static_cast<float>(std::nearbyint(static_cast<double>(x) * scale) / scale);
}

std::vector<float> ramp(size_t n, float scale, unsigned seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / 16777216.0f - 0.5f);
  }
  return v;
}

}  // namespace

// --- metadata ------------------------------------------------------------------------------------

TEST(Gguf, MetadataOfEveryTypeRoundTrips) {
  TempDir t;
  auto val = [](GgufType ty) {
    GgufValue v;
    v.type = ty;
    return v;
  };
  GgufMetadata md;
  GgufValue v = val(GgufType::u8); v.u = 255; md.emplace_back("t.u8", v);
  v = val(GgufType::i8); v.i = -128; md.emplace_back("t.i8", v);
  v = val(GgufType::u16); v.u = 65535; md.emplace_back("t.u16", v);
  v = val(GgufType::i16); v.i = -32768; md.emplace_back("t.i16", v);
  md.emplace_back("t.u32", GgufValue::make_u32(4000000000u));
  md.emplace_back("t.i32", GgufValue::make_i32(-2000000000));
  md.emplace_back("t.f32", GgufValue::make_f32(0.1f));
  md.emplace_back("t.bool_true", GgufValue::make_bool(true));
  md.emplace_back("t.bool_false", GgufValue::make_bool(false));
  md.emplace_back("t.string", GgufValue::make_string(std::string("caf\xc3\xa9 \0nul", 10)));
  md.emplace_back("t.empty_string", GgufValue::make_string(""));
  v = val(GgufType::u64); v.u = UINT64_MAX; md.emplace_back("t.u64", v);
  v = val(GgufType::i64); v.i = INT64_MIN; md.emplace_back("t.i64", v);
  v = val(GgufType::f64); v.f = 1.0 / 3.0; md.emplace_back("t.f64", v);
  md.emplace_back("t.strings", GgufValue::make_string_array({"a", "", "\xc4\xa0the", "l o"}));
  md.emplace_back("t.i32s", GgufValue::make_i32_array({1, -2, 3}));
  md.emplace_back("t.f32s", GgufValue::make_f32_array({0.5f, -1e30f}));
  md.emplace_back("t.empty_array", GgufValue::make_i32_array({}));
  GgufValue nested = val(GgufType::array);
  nested.elem_type = GgufType::array;
  nested.arr = {GgufValue::make_i32_array({7, 8}), GgufValue::make_i32_array({}), GgufValue::make_i32_array({9})};
  md.emplace_back("t.nested", nested);
  GgufValue nested_strings = val(GgufType::array);
  nested_strings.elem_type = GgufType::array;
  nested_strings.arr = {GgufValue::make_string_array({"x", "yz"}), GgufValue::make_string_array({""})};
  md.emplace_back("t.nested_strings", nested_strings);
  GgufValue bools = val(GgufType::array);
  bools.elem_type = GgufType::boolean;
  bools.arr = {GgufValue::make_bool(true), GgufValue::make_bool(false)};
  md.emplace_back("t.bools", bools);

  {
    GgufWriter w(t / "m.gguf", md, {});
    w.close();
  }
  GgufReader r(t / "m.gguf");
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.alignment(), 32u);
  EXPECT_TRUE(r.tensors().empty());
  ASSERT_EQ(r.metadata().size(), md.size());
  for (size_t k = 0; k < md.size(); ++k) EXPECT_EQ(r.metadata()[k].first, md[k].first);  // order kept

  auto get = [&](const std::string& key) {
    const GgufValue* p = r.find(key);
    EXPECT_NE(p, nullptr) << key;
    return p ? *p : GgufValue{};
  };
  EXPECT_EQ(get("t.u8").type, GgufType::u8);
  EXPECT_EQ(get("t.u8").u, 255u);
  EXPECT_EQ(get("t.i8").type, GgufType::i8);
  EXPECT_EQ(get("t.i8").i, -128);
  EXPECT_EQ(get("t.u16").u, 65535u);
  EXPECT_EQ(get("t.i16").i, -32768);
  EXPECT_EQ(get("t.u32").type, GgufType::u32);
  EXPECT_EQ(get("t.u32").u, 4000000000u);
  EXPECT_EQ(get("t.i32").i, -2000000000);
  EXPECT_EQ(get("t.f32").type, GgufType::f32);
  EXPECT_EQ(get("t.f32").f, static_cast<double>(0.1f));
  EXPECT_EQ(get("t.bool_true").type, GgufType::boolean);
  EXPECT_TRUE(get("t.bool_true").b);
  EXPECT_FALSE(get("t.bool_false").b);
  EXPECT_EQ(get("t.string").s, std::string("caf\xc3\xa9 \0nul", 10));
  EXPECT_EQ(get("t.empty_string").type, GgufType::string);
  EXPECT_EQ(get("t.empty_string").s, "");
  EXPECT_EQ(get("t.u64").u, UINT64_MAX);
  EXPECT_EQ(get("t.i64").i, INT64_MIN);
  EXPECT_EQ(get("t.f64").type, GgufType::f64);
  EXPECT_EQ(get("t.f64").f, 1.0 / 3.0);

  const GgufValue strings = get("t.strings");
  EXPECT_EQ(strings.type, GgufType::array);
  EXPECT_EQ(strings.elem_type, GgufType::string);
  ASSERT_EQ(strings.arr.size(), 4u);
  EXPECT_EQ(strings.arr[2].s, "\xc4\xa0the");
  EXPECT_EQ(strings.arr[1].s, "");
  EXPECT_EQ(get("t.i32s").arr.at(1).i, -2);
  EXPECT_EQ(get("t.f32s").arr.at(1).f, static_cast<double>(-1e30f));
  EXPECT_EQ(get("t.empty_array").elem_type, GgufType::i32);
  EXPECT_TRUE(get("t.empty_array").arr.empty());

  const GgufValue n = get("t.nested");
  EXPECT_EQ(n.elem_type, GgufType::array);
  ASSERT_EQ(n.arr.size(), 3u);
  EXPECT_EQ(n.arr[0].elem_type, GgufType::i32);
  ASSERT_EQ(n.arr[0].arr.size(), 2u);
  EXPECT_EQ(n.arr[0].arr[1].i, 8);
  EXPECT_TRUE(n.arr[1].arr.empty());
  EXPECT_EQ(n.arr[2].arr.at(0).i, 9);
  const GgufValue ns = get("t.nested_strings");
  ASSERT_EQ(ns.arr.size(), 2u);
  EXPECT_EQ(ns.arr[0].arr.at(1).s, "yz");
  EXPECT_EQ(ns.arr[1].arr.at(0).s, "");
  EXPECT_TRUE(get("t.bools").arr.at(0).b);
  EXPECT_FALSE(get("t.bools").arr.at(1).b);
  EXPECT_EQ(r.find("t.absent"), nullptr);
}

TEST(Gguf, ValueAccessorsNameWhatIsWrong) {
  EXPECT_EQ(GgufValue::make_u32(7).as_uint("k"), 7u);
  EXPECT_EQ(GgufValue::make_i32(7).as_uint("k"), 7u);
  EXPECT_EQ(GgufValue::make_f32(0.5f).as_double("k"), 0.5);
  EXPECT_EQ(GgufValue::make_string("s").as_string("k"), "s");
  EXPECT_NE(runtime_error_of([] { GgufValue::make_i32(-1).as_uint("m.gguf: llama.block_count"); })
                .find("m.gguf: llama.block_count: negative value -1"),
            std::string::npos);
  EXPECT_NE(runtime_error_of([] { GgufValue::make_f32(1).as_uint("m.gguf: x"); }).find("m.gguf: x: expected an integer"),
            std::string::npos);
  EXPECT_NE(runtime_error_of([] { GgufValue::make_u32(1).as_double("m.gguf: y"); }).find("m.gguf: y: expected a float"),
            std::string::npos);
  EXPECT_NE(runtime_error_of([] { GgufValue::make_u32(1).as_string("m.gguf: z"); }).find("m.gguf: z: expected a string"),
            std::string::npos);
}

// --- tensors -------------------------------------------------------------------------------------

TEST(Gguf, TensorsRoundTripInEveryWrittenType) {
  TempDir t;
  const std::vector<float> a = ramp(64 * 3, 4.0f, 1);    // f32, ne {64, 3}
  const std::vector<float> b = ramp(5 * 7, 100.0f, 2);   // f16, ne {5, 7}
  const std::vector<float> c = ramp(3 * 2 * 4, 1e20f, 3);  // bf16, ne {3, 2, 4}
  const std::vector<float> d = ramp(11, 1.0f, 4);        // f32 1-D, odd size
  GgufMetadata md{{"general.architecture", GgufValue::make_string("llama")}};
  std::vector<GgufWriter::Tensor> decl{{"a", {64, 3}, GgmlType::f32},
                                       {"b", {5, 7}, GgmlType::f16},
                                       {"c", {3, 2, 4}, GgmlType::bf16},
                                       {"d", {11}, GgmlType::f32},
                                       {"empty", {4, 0}, GgmlType::f16}};
  uint64_t size;
  {
    GgufWriter w(t / "t.gguf", md, decl);
    w.write_f32(a.data());
    w.write_f32(b.data());
    w.write_f32(c.data());
    w.write_f32(d.data());
    w.write_f32(nullptr);
    w.close();
    size = w.file_size();
  }
  const std::string bytes = slurp(t / "t.gguf");
  EXPECT_EQ(bytes.size(), size);
  EXPECT_EQ(size % 32, 0u);
  GgufReader r(t / "t.gguf");
  ASSERT_EQ(r.tensors().size(), 5u);
  const auto* ti = r.find_tensor("c");
  ASSERT_NE(ti, nullptr);
  EXPECT_EQ(ti->ne, (std::vector<uint64_t>{3, 2, 4}));
  EXPECT_EQ(ti->type, GgmlType::bf16);
  EXPECT_EQ(ti->nbytes, 48u);
  EXPECT_EQ(r.find_tensor("nope"), nullptr);
  for (const auto& info : r.tensors()) EXPECT_EQ(info.offset % 32, 0u) << info.name;

  std::vector<float> out(64 * 3);
  r.read_f32(*r.find_tensor("a"), out.data());
  EXPECT_EQ(0, std::memcmp(out.data(), a.data(), a.size() * 4));  // f32 is bit-exact
  out.assign(11, 0);
  r.read_f32(*r.find_tensor("d"), out.data());
  EXPECT_EQ(0, std::memcmp(out.data(), d.data(), d.size() * 4));
  // f16 and bf16 round to nearest: within half a unit in the last place of each format.
  out.assign(b.size(), 0);
  r.read_f32(*r.find_tensor("b"), out.data());
  for (size_t k = 0; k < b.size(); ++k) EXPECT_NEAR(out[k], b[k], std::fabs(b[k]) * 0x1p-11f) << k;
  out.assign(c.size(), 0);
  r.read_f32(*r.find_tensor("c"), out.data());
  for (size_t k = 0; k < c.size(); ++k) EXPECT_NEAR(out[k], c[k], std::fabs(c[k]) * 0x1p-8f) << k;
  r.read_f32(*r.find_tensor("empty"), nullptr);
  EXPECT_EQ(r.find_tensor("empty")->numel(), 0u);

  // Padding between the header, and after every tensor, is zeros.
  const auto& ta = *r.find_tensor("d");
  const size_t data_start = size - [&] {
    uint64_t s = 0;
    for (const auto& info : r.tensors()) s = std::max<uint64_t>(s, info.offset + (info.nbytes + 31) / 32 * 32);
    return s;
  }();
  EXPECT_EQ(data_start % 32, 0u);
  for (size_t k = data_start + ta.offset + ta.nbytes; k < data_start + ta.offset + 64; ++k)
    EXPECT_EQ(bytes[k], '\0') << k;
}

// Q8_0 as written here against a straightforward computation in this test: quants are
// round(x / d) with d = max|x| / 127 in float, the stored scale is d rounded to fp16.
TEST(Gguf, Q8_0MatchesAStraightforwardQuantisation) {
  TempDir t;
  const size_t ne0 = 96, ne1 = 5;
  std::vector<float> x = ramp(ne0 * ne1, 8.0f, 5);
  for (size_t k = 32; k < 64; ++k) x[k] = 0.0f;  // an all-zero block: scale 0, quants 0
  x[100] = -7.75f;                              // a negative maximum
  {
    GgufWriter w(t / "q.gguf", {}, {{"w", {ne0, ne1}, GgmlType::q8_0}});
    w.write_f32(x.data());
    w.close();
  }
  GgufReader r(t / "q.gguf");
  const GgufTensorInfo& info = r.tensors().at(0);
  EXPECT_EQ(info.type, GgmlType::q8_0);
  EXPECT_EQ(info.nbytes, ne0 / 32 * 34 * ne1);
  std::vector<float> y(ne0 * ne1);
  r.read_f32(info, y.data());

  const std::string bytes = slurp(t / "q.gguf");
  const size_t data_start = bytes.size() - (info.nbytes + 31) / 32 * 32;
  for (size_t blk = 0; blk < x.size() / 32; ++blk) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[blk * 32 + j]));
    const float d = amax / 127.0f;
    const float id = d == 0 ? 0.0f : 1.0f / d;
    const float d16 = round_to_f16(d);
    for (size_t j = 0; j < 32; ++j) {
      const size_t k = blk * 32 + j;
      const float q = std::round(x[k] * id);
      EXPECT_EQ(static_cast<int8_t>(bytes[data_start + blk * 34 + 2 + j]), static_cast<int8_t>(q)) << k;
      EXPECT_EQ(y[k], q * d16) << k;
      // |x - q·d16| <= |x - q·d| + |q|·|d - d16| <= d/2 + 127·|d - d16|: half a step plus what
      // rounding the scale to fp16 (relative error <= 2^-11) adds, about 0.06·d.
      EXPECT_LE(std::fabs(x[k] - y[k]), d / 2 + 127 * std::fabs(d - d16) + 1e-6f * amax) << k;
    }
  }
  EXPECT_EQ(y[40], 0.0f);
}

TEST(Gguf, CustomAlignmentIsHonoured) {
  TempDir t;
  GgufMetadata md{{"general.alignment", GgufValue::make_u32(256)}, {"x", GgufValue::make_u32(1)}};
  const std::vector<float> a = ramp(10, 1, 6), b = ramp(32, 1, 7);
  uint64_t size;
  {
    GgufWriter w(t / "a.gguf", md, {{"a", {10}, GgmlType::f32}, {"b", {32}, GgmlType::q8_0}});
    w.write_f32(a.data());
    w.write_f32(b.data());
    w.close();
    size = w.file_size();
  }
  EXPECT_EQ(size % 256, 0u);
  EXPECT_EQ(size, 256u * 3);  // header, a (40 bytes), b (34 bytes), each padded to 256
  GgufReader r(t / "a.gguf");
  EXPECT_EQ(r.alignment(), 256u);
  EXPECT_EQ(r.tensors().at(1).offset, 256u);
  std::vector<float> out(10);
  r.read_f32(r.tensors().at(0), out.data());
  EXPECT_EQ(out, a);

  // A large alignment (a fuzzing finding: the padding was once built as one buffer of that size).
  {
    GgufWriter w(t / "big.gguf", {{"general.alignment", GgufValue::make_u32(1u << 20)}}, {{"a", {10}, GgmlType::f32}});
    w.write_f32(a.data());
    w.close();
    EXPECT_EQ(w.file_size(), 2u << 20);
  }
  GgufReader big(t / "big.gguf");
  EXPECT_EQ(big.alignment(), 1u << 20);
  out.assign(10, 0);
  big.read_f32(big.tensors().at(0), out.data());
  EXPECT_EQ(out, a);

  // The default is 32: a hand-made file whose tensor sits right after the 32-aligned header.
  Bytes f;
  f.header(1, 0).tensor("t", {2}, 0, 0).pad(32).put(1.5f).put(-2.0f);
  spit(t / "h.gguf", f.b);
  GgufReader h(t / "h.gguf");
  EXPECT_EQ(h.alignment(), 32u);
  out.assign(2, 0);
  h.read_f32(h.tensors().at(0), out.data());
  EXPECT_EQ(out, (std::vector<float>{1.5f, -2.0f}));

  // A small power of two given in the file is honoured too.
  Bytes g;
  g.header(1, 1).kv_u32("general.alignment", 8).tensor("t", {2}, 0, 8).pad(8).zeros(8).put(3.0f).put(4.0f);
  spit(t / "g.gguf", g.b);
  GgufReader gr(t / "g.gguf");
  EXPECT_EQ(gr.alignment(), 8u);
  gr.read_f32(gr.tensors().at(0), out.data());
  EXPECT_EQ(out, (std::vector<float>{3.0f, 4.0f}));
}

TEST(Gguf, Version2IsRead) {
  TempDir t;
  Bytes f;
  f.header(0, 1, 2).kv_u32("a.b", 5);
  spit(t / "v2.gguf", f.b);
  GgufReader r(t / "v2.gguf");
  EXPECT_EQ(r.version(), 2u);
  EXPECT_EQ(r.find("a.b")->u, 5u);
}

// --- the writer's refusals -----------------------------------------------------------------------

TEST(Gguf, WriterRefusesWhatItCannotWrite) {
  TempDir t;
  auto usage = [&](std::vector<GgufWriter::Tensor> decl, GgufMetadata md = {}) -> std::string {
    try {
      GgufWriter w(t / "w.gguf", md, decl);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(usage({{"blk.0.ffn_down.weight", {33, 2}, GgmlType::q8_0}}).find("tensor 'blk.0.ffn_down.weight'"),
            std::string::npos);
  EXPECT_NE(usage({{"blk.0.ffn_down.weight", {33, 2}, GgmlType::q8_0}}).find("multiple of Q8_0's block of 32"),
            std::string::npos);
  EXPECT_NE(usage({{"q", {32}, GgmlType::q4_0}}).find("tensor 'q': cannot write type Q4_0"), std::string::npos);
  EXPECT_NE(usage({{"x", {1}, GgmlType::f32}, {"x", {1}, GgmlType::f32}}).find("tensor 'x': name given twice"),
            std::string::npos);
  EXPECT_NE(usage({{std::string(64, 'n'), {1}, GgmlType::f32}}).find("longer than 63"), std::string::npos);
  EXPECT_NE(usage({{"five", {1, 1, 1, 1, 1}, GgmlType::f32}}).find("tensor 'five': 5 dimensions"), std::string::npos);
  EXPECT_NE(usage({}, {{"general.alignment", GgufValue::make_u32(48)}}).find("general.alignment"), std::string::npos);
  EXPECT_NE(usage({}, {{"k", GgufValue::make_u32(1)}, {"k", GgufValue::make_u32(2)}}).find("'k' given twice"),
            std::string::npos);
  EXPECT_EQ(usage({{"ok", {64, 2}, GgmlType::q8_0}}), "");
}

TEST(Gguf, WriterRefusesNonFiniteQ8_0AndEarlyClose) {
  TempDir t;
  std::vector<float> x(32, 1.0f);
  x[5] = std::nanf("");
  GgufWriter w(t / "n.gguf", {}, {{"w", {32}, GgmlType::q8_0}});
  EXPECT_NE(runtime_error_of([&] { w.write_f32(x.data()); }).find("tensor 'w': element 5 is not finite"),
            std::string::npos);
  GgufWriter w2(t / "c.gguf", {}, {{"w", {32}, GgmlType::f32}});
  EXPECT_THROW(w2.close(), InternalError);
}

// --- the reader's refusals: one crafted file per rule --------------------------------------------

TEST(Gguf, RejectsBadMagic) {
  TempDir t;
  Bytes f;
  f.b = "GGML";
  f.u32(3).u64(0).u64(0);
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find(t / "bad.gguf"), std::string::npos) << e;
  EXPECT_NE(e.find("not a GGUF file"), std::string::npos) << e;
  EXPECT_NE(open_error(t, "GG").find("truncated"), std::string::npos);
  EXPECT_NE(open_error(t, "").find("truncated"), std::string::npos);
}

TEST(Gguf, RejectsVersionsOtherThan2And3) {
  TempDir t;
  for (uint32_t v : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    Bytes f;
    f.header(0, 0, v);
    const std::string e = open_error(t, f.b);
    EXPECT_NE(e.find("GGUF version " + std::to_string(v) + " is not supported"), std::string::npos) << e;
  }
  Bytes be;
  be.header(0, 0, 0x03000000u);
  EXPECT_NE(open_error(t, be.b).find("big-endian"), std::string::npos);
}

TEST(Gguf, RejectsCountsTheFileCannotHold) {
  TempDir t;
  Bytes kv;
  kv.header(0, 1000).kv_u32("a", 1);
  const std::string e1 = open_error(t, kv.b);
  EXPECT_NE(e1.find("bad.gguf: header: 1000 metadata entries cannot fit"), std::string::npos) << e1;
  Bytes tn;
  tn.header(UINT64_MAX, 0).tensor("t", {1}, 0, 0);
  const std::string e2 = open_error(t, tn.b);
  EXPECT_NE(e2.find("tensor descriptions cannot fit"), std::string::npos) << e2;
  Bytes tn2;
  tn2.header(3, 0).tensor("t", {1}, 0, 0).pad(32).zeros(4);
  const std::string e3 = open_error(t, tn2.b);
  EXPECT_NE(e3.find("3 tensor descriptions cannot fit"), std::string::npos) << e3;
}

TEST(Gguf, RejectsStringLengthsBeyondTheFileOrTheLimit) {
  TempDir t;
  Bytes f;
  f.header(0, 1).u64(1ull << 40).b += "abcdefgh";
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("metadata entry 0: key length 1099511627776 exceeds the 8 bytes left"), std::string::npos) << e;
  Bytes v;
  v.header(0, 1).str("general.name").u32(8).u64(UINT64_MAX - 3).zeros(20);
  const std::string e2 = open_error(t, v.b);
  EXPECT_NE(e2.find("key 'general.name': string length"), std::string::npos) << e2;
  Bytes big;
  big.header(0, 1).str(std::string(70000, 'k')).u32(4).u32(1);
  const std::string e3 = open_error(t, big.b);
  EXPECT_NE(e3.find("key of 70000 bytes (limit 65535)"), std::string::npos) << e3;
}

TEST(Gguf, RejectsEmptyAndDuplicateKeys) {
  TempDir t;
  Bytes f;
  f.header(0, 1).kv_u32("", 1);
  EXPECT_NE(open_error(t, f.b).find("metadata entry 0: empty key"), std::string::npos);
  Bytes d;
  d.header(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2);
  const std::string e = open_error(t, d.b);
  EXPECT_NE(e.find("key 'a.b': duplicate key"), std::string::npos) << e;
}

TEST(Gguf, RejectsUnknownValueTypes) {
  TempDir t;
  Bytes f;
  f.header(0, 1).str("odd.key").u32(13).u64(0);
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("key 'odd.key': unknown value type 13"), std::string::npos) << e;
  Bytes a;
  a.header(0, 1).str("odd.array").u32(9).u32(99).u64(0).zeros(8);
  const std::string e2 = open_error(t, a.b);
  EXPECT_NE(e2.find("key 'odd.array': array of unknown value type 99"), std::string::npos) << e2;
}

TEST(Gguf, RejectsArraysLongerThanTheFile) {
  TempDir t;
  Bytes f;
  f.header(0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(1000).str("a").str("b");
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("key 'tokenizer.ggml.tokens': array of 1000 string values cannot fit"), std::string::npos) << e;
  Bytes g;
  g.header(0, 1).str("x").u32(9).u32(10).u64(UINT64_MAX).zeros(64);
  EXPECT_NE(open_error(t, g.b).find("key 'x': array of"), std::string::npos);
}

TEST(Gguf, NestedArraysAreReadToASmallDepthOnly) {
  TempDir t;
  // Four levels: array of array of array of array of u8 — accepted.
  Bytes ok;
  ok.header(0, 1).str("deep").u32(9);
  for (int k = 0; k < 3; ++k) ok.u32(9).u64(1);
  ok.u32(0).u64(2).u8(1).u8(2);
  spit(t / "ok.gguf", ok.b);
  GgufReader r(t / "ok.gguf");
  EXPECT_EQ(r.find("deep")->arr.at(0).arr.at(0).arr.at(0).arr.at(1).u, 2u);
  // Five levels: refused.
  Bytes deep;
  deep.header(0, 1).str("deeper").u32(9);
  for (int k = 0; k < 4; ++k) deep.u32(9).u64(1);
  deep.u32(0).u64(1).u8(1);
  const std::string e = open_error(t, deep.b);
  EXPECT_NE(e.find("key 'deeper': arrays nested more than 4 deep"), std::string::npos) << e;
}

TEST(Gguf, RejectsBoolOtherThan0Or1) {
  TempDir t;
  Bytes f;
  f.header(0, 1).str("tokenizer.ggml.add_bos_token").u32(7).u8(2);
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("key 'tokenizer.ggml.add_bos_token': bool value 2"), std::string::npos) << e;
  Bytes a;
  a.header(0, 1).str("bools").u32(9).u32(7).u64(2).u8(1).u8(255);
  EXPECT_NE(open_error(t, a.b).find("key 'bools': bool value 255"), std::string::npos);
}

TEST(Gguf, RejectsBadAlignment) {
  TempDir t;
  for (uint32_t a : {0u, 48u, 3u}) {
    Bytes f;
    f.header(0, 1).kv_u32("general.alignment", a);
    const std::string e = open_error(t, f.b);
    EXPECT_NE(e.find("key 'general.alignment': " + std::to_string(a) + " is not a power of two"), std::string::npos)
        << e;
  }
  Bytes w;
  w.header(0, 1).str("general.alignment").u32(5).u32(32);  // int32, not uint32
  const std::string e = open_error(t, w.b);
  EXPECT_NE(e.find("key 'general.alignment': type int32, expected uint32"), std::string::npos) << e;
}

TEST(Gguf, RejectsBadTensorNames) {
  TempDir t;
  Bytes f;
  f.header(1, 0).tensor(std::string(64, 'n'), {1}, 0, 0).pad(32).zeros(32);
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("tensor 0: name of 64 bytes (limit 63)"), std::string::npos) << e;
  Bytes ok;
  ok.header(1, 0).tensor(std::string(63, 'n'), {1}, 0, 0).pad(32).zeros(32);
  EXPECT_EQ(open_error(t, ok.b), "");
  Bytes dup;
  dup.header(2, 0).tensor("blk.0.attn_q.weight", {1}, 0, 0).tensor("blk.0.attn_q.weight", {1}, 0, 32).pad(32).zeros(64);
  const std::string e2 = open_error(t, dup.b);
  EXPECT_NE(e2.find("tensor 'blk.0.attn_q.weight': duplicate tensor name"), std::string::npos) << e2;
  Bytes empty;
  empty.header(1, 0).tensor("", {1}, 0, 0).pad(32).zeros(32);
  EXPECT_NE(open_error(t, empty.b).find("tensor 0: empty name"), std::string::npos);
}

TEST(Gguf, RejectsDimensionCountsOutside1To4) {
  TempDir t;
  Bytes zero;
  zero.header(1, 0).str("scalar").u32(0).u32(0).u64(0).pad(32).zeros(32);
  const std::string e = open_error(t, zero.b);
  EXPECT_NE(e.find("tensor 'scalar': 0 dimensions"), std::string::npos) << e;
  Bytes five;
  five.header(1, 0).tensor("five", {1, 1, 1, 1, 1}, 0, 0).pad(32).zeros(32);
  EXPECT_NE(open_error(t, five.b).find("tensor 'five': 5 dimensions"), std::string::npos);
}

TEST(Gguf, RejectsDimensionsThatOverflow) {
  TempDir t;
  Bytes f;
  f.header(1, 0).tensor("huge", {1ull << 32, 1ull << 32}, 0, 0).pad(32);
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("tensor 'huge': element count overflows"), std::string::npos) << e;
  Bytes neg;
  neg.header(1, 0).tensor("neg", {UINT64_MAX}, 0, 0).pad(32);
  EXPECT_NE(open_error(t, neg.b).find("tensor 'neg': ne[0] = 18446744073709551615 is out of range"),
            std::string::npos);
  // Zero-sized dimensions are allowed (numel 0).
  Bytes z;
  z.header(1, 0).tensor("z", {4, 0}, 0, 0).pad(32);
  EXPECT_EQ(open_error(t, z.b), "");
}

TEST(Gguf, RejectsUnknownTensorTypes) {
  TempDir t;
  Bytes f;
  f.header(1, 0).tensor("q5", {32}, 6, 0).pad(32).zeros(64);  // Q5_0: real, but not read here
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("tensor 'q5': unknown or unsupported ggml type id 6"), std::string::npos) << e;
  Bytes g;
  g.header(1, 0).tensor("x", {32}, 1000, 0).pad(32).zeros(64);
  EXPECT_NE(open_error(t, g.b).find("tensor 'x': unknown or unsupported ggml type id 1000"), std::string::npos);
}

TEST(Gguf, RejectsRowsThatAreNotWholeBlocks) {
  TempDir t;
  Bytes f;
  f.header(1, 0).tensor("output.weight", {33, 2}, 8, 0).pad(32).zeros(128);
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("tensor 'output.weight': ne[0] = 33 is not a multiple of Q8_0's block of 32"), std::string::npos)
      << e;
  Bytes k;
  k.header(1, 0).tensor("k", {128}, 12, 0).pad(32).zeros(256);
  EXPECT_NE(open_error(t, k.b).find("block of 256"), std::string::npos);
}

TEST(Gguf, RejectsMisalignedOffsets) {
  TempDir t;
  Bytes f;
  f.header(1, 0).tensor("t", {2}, 0, 4).pad(32).zeros(64);
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("tensor 't': offset 4 is not a multiple of the alignment 32"), std::string::npos) << e;
}

TEST(Gguf, RejectsTensorsBeyondTheEndOfTheFile) {
  TempDir t;
  Bytes f;
  f.header(1, 0).tensor("t", {16}, 0, 0).pad(32).zeros(60);  // 64 bytes needed
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("tensor 't': data at offset 0 + 64 bytes lies beyond the end of the file"), std::string::npos)
      << e;
  Bytes far;
  far.header(1, 0).tensor("far", {1}, 0, 0xFFFFFFFFFFFFFFE0ull).pad(32).zeros(32);
  EXPECT_NE(open_error(t, far.b).find("tensor 'far': data at offset"), std::string::npos);
}

TEST(Gguf, RejectsOverlappingTensors) {
  TempDir t;
  Bytes f;
  f.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad(32).zeros(96);  // a is [0, 64)
  const std::string e = open_error(t, f.b);
  EXPECT_NE(e.find("tensors 'a' and 'b' overlap"), std::string::npos) << e;
  Bytes ok;
  ok.header(2, 0).tensor("a", {8}, 0, 32).tensor("b", {8}, 0, 0).pad(32).zeros(64);  // any order, no overlap
  EXPECT_EQ(open_error(t, ok.b), "");
}

TEST(Gguf, RejectsTruncatedFiles) {
  TempDir t;
  Bytes f;
  f.header(1, 1).kv_u32("general.file_type", 1).tensor("t", {8}, 0, 0).pad(32).zeros(32);
  EXPECT_EQ(open_error(t, f.b), "");
  // Every cut inside the header fails with a message naming the file; none crashes.
  for (size_t cut = 0; cut < f.b.size() - 32; ++cut) {
    const std::string e = open_error(t, f.b.substr(0, cut));
    EXPECT_NE(e.find(t / "bad.gguf" + ": "), std::string::npos) << cut;
  }
  Bytes g;
  g.header(0, 1).kv_u32("general.file_type", 1);
  const std::string e = open_error(t, g.b.substr(0, g.b.size() - 2));
  EXPECT_NE(e.find("key 'general.file_type': truncated"), std::string::npos) << e;
  EXPECT_NE(runtime_error_of([&] { GgufReader r(t / "missing.gguf"); }).find("missing.gguf: cannot open"),
            std::string::npos);
}

// --- quant.hpp directly --------------------------------------------------------------------------

// Hand-made blocks whose values are worked out from the layout comments in quant.cpp, so a
// mistake in the nibble or scale packing shows up even without the Python reference check.
TEST(Quant, DequantisesHandMadeBlocks) {
  const uint16_t one = 0x3C00, half = 0x3800, two = 0x4000;  // fp16 1.0, 0.5, 2.0
  // q4_0: byte j = weight j (low) and weight j+16 (high), minus 8.
  uint8_t q40[18] = {};
  std::memcpy(q40, &two, 2);
  q40[2] = 0x9F;  // w0 = 15-8 = 7, w16 = 9-8 = 1
  q40[17] = 0x01;  // w15 = 1-8 = -7, w31 = 0-8 = -8
  float y[256];
  dequantize_row(GgmlType::q4_0, q40, 32, y);
  EXPECT_EQ(y[0], 14.0f);
  EXPECT_EQ(y[16], 2.0f);
  EXPECT_EQ(y[15], -14.0f);
  EXPECT_EQ(y[31], -16.0f);
  EXPECT_EQ(y[1], -16.0f);

  uint8_t q41[20] = {};
  std::memcpy(q41, &half, 2);
  std::memcpy(q41 + 2, &two, 2);
  q41[4] = 0x3A;  // w0 = 10, w16 = 3
  dequantize_row(GgmlType::q4_1, q41, 32, y);
  EXPECT_EQ(y[0], 7.0f);
  EXPECT_EQ(y[16], 3.5f);
  EXPECT_EQ(y[1], 2.0f);

  // q4_K: scales for sub-blocks 0 and 5 (sc 5 lives in byte 9's low nibble and byte 1's top bits).
  uint8_t q4k[144] = {};
  std::memcpy(q4k, &one, 2);
  std::memcpy(q4k + 2, &half, 2);
  q4k[4 + 0] = 3;                       // sc[0] = 3
  q4k[4 + 4] = 4;                       // mn[0] = 4
  q4k[4 + 9] = 0x2 | (0x1 << 4);        // sc[5] low = 2, mn[5] low = 1
  q4k[4 + 1] = static_cast<uint8_t>(1 << 6);  // sc[5] high bits = 1 -> sc[5] = 16 + 2 = 18
  q4k[4 + 5] = static_cast<uint8_t>(2 << 6);  // mn[5] high bits = 2 -> mn[5] = 32 + 1 = 33
  q4k[16 + 0] = 0x07;                   // sub-block 0, weight 0 = 7
  q4k[16 + 64 + 3] = 0xB0;              // group 2: sub-block 5 (high nibbles), weight 3 = 11
  dequantize_row(GgmlType::q4_k, q4k, 256, y);
  EXPECT_EQ(y[0], 3.0f * 7 - 0.5f * 4);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[5 * 32 + 3], 18.0f * 11 - 0.5f * 33);
  EXPECT_EQ(y[5 * 32 + 4], -16.5f);

  // q5_K: the fifth bit of weight l of sub-block s is bit s of qh[l].
  uint8_t q5k[176] = {};
  std::memcpy(q5k, &one, 2);
  q5k[4 + 3] = 1;                     // sc[3] = 1, mn[3] = 0
  q5k[16 + 2] = 1 << 3;               // sub-block 3, weight 2: +16
  q5k[48 + 32 + 2] = 0x50;            // group 1 high nibble = sub-block 3, weight 2: 5
  dequantize_row(GgmlType::q5_k, q5k, 256, y);
  EXPECT_EQ(y[3 * 32 + 2], 21.0f);
  EXPECT_EQ(y[3 * 32 + 1], 0.0f);

  // q6_K: weight 200 is in the second half (128 + 72): low nibble from ql[64 + 8] (high nibble,
  // since 72 >= 64), top bits from qh[32 + 8] bits 4-5, scale 200 / 16 = 12.
  uint8_t q6k[210] = {};
  std::memcpy(q6k + 208, &half, 2);
  q6k[64 + 8] = 0x30;                  // low four bits 3
  q6k[128 + 32 + 8] = 2 << 4;          // top two bits 2 -> q = 32 + 3 = 35, minus 32 = 3
  q6k[192 + 12] = static_cast<uint8_t>(-4);  // int8 scale -4
  dequantize_row(GgmlType::q6_k, q6k, 256, y);
  EXPECT_EQ(y[200], 0.5f * -4 * 3);
  EXPECT_EQ(y[0], 0.0f);  // q = 0 - 32 with scale 0
}

TEST(Quant, Q8_0RoundTripsAndHandlesZeroBlocks) {
  std::vector<float> x(64, 0.0f);
  for (int j = 0; j < 32; ++j) x[32 + j] = static_cast<float>(j - 16) * 0.25f;
  uint8_t q[68];
  quantize_row_q8_0(x.data(), 64, q);
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(q[1], 0);
  float y[64];
  dequantize_row(GgmlType::q8_0, q, 64, y);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.0f);
  // max |x| = 4 -> q = -127 for x = -4; the others within half a step.
  EXPECT_EQ(static_cast<int8_t>(q[34 + 2]), -127);
  for (int j = 0; j < 32; ++j) EXPECT_NEAR(y[32 + j], x[32 + j], 4.0f / 127 / 2 * 1.01f) << j;
}
