#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "core/error.hpp"
#include "formats/half.hpp"
#include "formats/safetensors.hpp"
#include "test_util.hpp"

using namespace bellows;
using namespace bellows::formats;
using bellows::testing::TempDir;
using bellows::testing::runtime_error_of;

namespace {

// --- half: references written from the definitions, independent of half.cpp's bit tricks ----

// The value of f16 bits `h` with the exponent treated as unbounded, so 0x7C00 reads as 65536:
// the "next value" that IEEE round-to-nearest compares against when deciding overflow.
double f16_value_unbounded(uint16_t h) {
  int exp = (h >> 10) & 0x1F;
  int mant = h & 0x3FF;
  double mag = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  return (h & 0x8000) ? -mag : mag;
}

double bf16_value_unbounded(uint16_t b) {
  int exp = (b >> 7) & 0xFF;
  int mant = b & 0x7F;
  double mag = exp == 0 ? std::ldexp(mant, -133) : std::ldexp(128 + mant, exp - 134);
  return (b & 0x8000) ? -mag : mag;
}

// Nearest of the two neighbours of |a| in `table` (increasing magnitudes indexed by bit
// pattern), ties to the even pattern: IEEE round-to-nearest-even spelled out.
uint16_t nearest_even(const std::vector<double>& table, double a) {
  auto hi = static_cast<size_t>(std::upper_bound(table.begin(), table.end(), a) - table.begin());
  if (hi == table.size()) return static_cast<uint16_t>(table.size() - 1);
  size_t lo = hi - 1;
  double dl = a - table[lo], dh = table[hi] - a;  // exact in double
  if (dl < dh) return static_cast<uint16_t>(lo);
  if (dh < dl) return static_cast<uint16_t>(hi);
  return static_cast<uint16_t>(lo % 2 == 0 ? lo : hi);
}

// Positive f16 magnitudes 0x0000..0x7C00 (the last one standing in for "rounds to inf").
const std::vector<double>& f16_table() {
  static const std::vector<double> t = [] {
    std::vector<double> v;
    for (uint32_t h = 0; h <= 0x7C00; ++h) v.push_back(f16_value_unbounded(static_cast<uint16_t>(h)));
    return v;
  }();
  return t;
}

uint16_t reference_f16(float f) {
  uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  double a = std::fabs(static_cast<double>(f));
  if (a >= f16_table().back()) return sign | 0x7C00;
  return sign | nearest_even(f16_table(), a);
}

uint16_t reference_bf16(float f) {
  uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isinf(f)) return sign | 0x7F80;
  uint32_t abs_bits = std::bit_cast<uint32_t>(f) & 0x7FFFFFFF;
  auto lo = static_cast<uint16_t>(abs_bits >> 16);  // truncation: the neighbour toward zero
  double a = std::fabs(static_cast<double>(f));
  double dl = a - bf16_value_unbounded(lo), dh = bf16_value_unbounded(lo + 1) - a;
  uint16_t pick = dl < dh ? lo : dh < dl ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1);
  return sign | pick;
}

bool f16_is_nan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF); }
bool bf16_is_nan(uint16_t b) { return (b & 0x7F80) == 0x7F80 && (b & 0x7F); }

// Random floats of two kinds: any bit pattern (every exponent), and ones in and around f16's range.
std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> out;
  out.reserve(n);
  while (out.size() < n) {
    uint32_t bits = rng();
    float f = std::bit_cast<float>(bits);
    if (out.size() % 2) {
      int exp = static_cast<int>(rng() % 44) - 27;  // 2^-27 .. 2^16
      f = std::ldexp(1.0f + static_cast<float>(bits & 0x7FFFFF) * 0x1p-23f, exp) * ((bits >> 31) ? -1.0f : 1.0f);
    }
    if (!std::isnan(f)) out.push_back(f);
  }
  return out;
}

// --- safetensors: crafting files byte by byte ------------------------------------------------

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

std::string st_bytes(const std::string& header, size_t data_bytes) {
  return u64le(header.size()) + header + std::string(data_bytes, '\x01');
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string entry(const std::string& dtype, const std::string& shape, uint64_t b, uint64_t e) {
  return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":[)" + std::to_string(b) + "," +
         std::to_string(e) + "]}";
}

// Opening `bytes` must fail with a message that starts with the path and contains `want`
// (and names `tensor`, quoted, when given).
void expect_rejected(const std::string& bytes, const std::string& want, const std::string& tensor = "") {
  TempDir t;
  std::string path = t / "m.safetensors";
  write_bytes(path, bytes);
  std::string msg = runtime_error_of([&] { SafetensorsReader r(path); });
  ASSERT_FALSE(msg.empty()) << "accepted: expected an error containing '" << want << "'";
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(want), std::string::npos) << msg;
  if (!tensor.empty()) {
    EXPECT_NE(msg.find("tensor \"" + tensor + "\""), std::string::npos) << msg;
  }
}

void expect_rejected_header(const std::string& header, size_t data_bytes, const std::string& want,
                            const std::string& tensor = "") {
  expect_rejected(st_bytes(header, data_bytes), want, tensor);
}

}  // namespace

// --- half ------------------------------------------------------------------------------------

TEST(Half, F16EveryValueRoundTrips) {
  for (uint32_t i = 0; i <= 0xFFFF; ++i) {
    auto h = static_cast<uint16_t>(i);
    float f = f16_to_f32(h);
    if (f16_is_nan(h)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << i;
      // Signalling NaNs come back quiet, with the rest of the payload kept.
      ASSERT_EQ(f32_to_f16(f), h | 0x0200) << std::hex << i;
      continue;
    }
    if ((h & 0x7FFF) != 0x7C00) {
      ASSERT_EQ(static_cast<double>(f), f16_value_unbounded(h)) << std::hex << i;
    }
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << i;
  }
  EXPECT_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
}

TEST(Half, Bf16EveryValueRoundTrips) {
  for (uint32_t i = 0; i <= 0xFFFF; ++i) {
    auto b = static_cast<uint16_t>(i);
    float f = bf16_to_f32(b);
    if (bf16_is_nan(b)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
      ASSERT_EQ(f32_to_bf16(f), b | 0x0040) << std::hex << i;
      continue;
    }
    if ((b & 0x7FFF) != 0x7F80) {
      ASSERT_EQ(static_cast<double>(f), bf16_value_unbounded(b)) << std::hex << i;
    }
    ASSERT_EQ(f32_to_bf16(f), b) << std::hex << i;
  }
}

TEST(Half, F16NamedRoundingCases) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3C00);       // tie, even below
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);   // tie, even above
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + 0x1p-11f, 2.0f)), 0x3C01);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);              // tie between max and "65536": inf
  EXPECT_EQ(f32_to_f16(-65520.0f), 0xFC00);
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_f16(inf), 0x7C00);
  EXPECT_EQ(f32_to_f16(-inf), 0xFC00);
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);              // smallest subnormal
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);              // tie with 0: even
  EXPECT_EQ(f32_to_f16(-0x1p-25f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002);          // tie between 1 and 2 units
  EXPECT_EQ(f32_to_f16(5 * 0x1p-25f), 0x0002);          // tie between 2 and 3 units
  EXPECT_EQ(f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400);   // tie between largest subnormal and min normal
  EXPECT_EQ(f32_to_f16(0x1p-14f), 0x0400);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  uint16_t nan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(f16_is_nan(nan));
  EXPECT_TRUE(nan & 0x0200);
  // A signalling f32 NaN whose payload lies entirely below f16's precision must not become inf.
  EXPECT_TRUE(f16_is_nan(f32_to_f16(std::bit_cast<float>(0x7F800001u))));
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(std::bit_cast<float>(0x7F800001u))));
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0xFFC00000u)), 0xFFC0);  // sign kept
}

// Every halfway point between neighbouring f16 values (exact in f32), and one f32 step either side.
TEST(Half, F16EveryTieRoundsToEven) {
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    for (uint16_t sign : {0, 0x8000}) {
      auto lo = static_cast<uint16_t>(h | sign), hi = static_cast<uint16_t>((h + 1) | sign);
      auto mid = static_cast<float>((f16_value_unbounded(lo) + f16_value_unbounded(hi)) / 2);
      ASSERT_EQ(static_cast<double>(mid), (f16_value_unbounded(lo) + f16_value_unbounded(hi)) / 2);
      ASSERT_EQ(f32_to_f16(mid), (h % 2 == 0) ? lo : hi) << std::hex << h;
      ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), lo) << std::hex << h;
      ASSERT_EQ(f32_to_f16(std::nextafter(mid, sign ? -1e30f : 1e30f)), hi) << std::hex << h;
    }
  }
}

TEST(Half, F16MatchesReferenceOnRandomFloats) {
  size_t mismatches = 0;
  for (float f : random_floats(4'000'000, 1234)) {
    if (f32_to_f16(f) != reference_f16(f) && ++mismatches < 10)
      ADD_FAILURE() << std::hexfloat << f << ": got " << std::hex << f32_to_f16(f) << " want " << reference_f16(f);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(Half, Bf16MatchesReferenceOnRandomFloats) {
  size_t mismatches = 0;
  for (float f : random_floats(2'000'000, 99)) {
    if (f32_to_bf16(f) != reference_bf16(f) && ++mismatches < 10)
      ADD_FAILURE() << std::hexfloat << f << ": got " << std::hex << f32_to_bf16(f) << " want " << reference_bf16(f);
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // past bf16's max: inf
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);                     // tie, even below
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);                 // tie, even above
}

// --- safetensors: writer and reader together -------------------------------------------------

TEST(Safetensors, RoundTripsAllDtypesEmptyAndScalar) {
  TempDir t;
  std::string path = t / "m.safetensors";
  std::vector<SafetensorsTensor> decl = {
      {"w32", "F32", {2, 3}, 0, 0},  {"w16", "F16", {5}, 0, 0},     {"wbf", "BF16", {3, 1}, 0, 0},
      {"empty", "F32", {0, 4}, 0, 0}, {"scalar", "BF16", {}, 0, 0}, {"tail", "F16", {1, 1, 3}, 0, 0}};
  std::vector<std::vector<float>> values = {
      {1.5f, -2.25f, 3.0e-3f, 1e30f, -0.0f, 7.0f}, {1.0f, 0.1f, 65519.0f, 70000.0f, -1e-7f}, {3.14159f, -1e-20f, 2.0e38f},
      {},                                            {-42.4f},                                 {0.5f, 0.25f, 1e-5f}};
  {
    SafetensorsWriter w(path, decl, {{"note", "unit test"}});
    for (const auto& v : values) w.write_f32(v.data());
    w.close();
    EXPECT_EQ(w.file_size(), std::filesystem::file_size(path));
  }
  SafetensorsReader r(path);
  EXPECT_EQ(r.path(), path);
  EXPECT_EQ(r.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "unit test"}}));
  ASSERT_EQ(r.tensors().size(), decl.size());
  for (size_t i = 0; i < decl.size(); ++i) {
    const SafetensorsTensor* got = r.find(decl[i].name);
    ASSERT_NE(got, nullptr) << decl[i].name;
    EXPECT_EQ(got->dtype, decl[i].dtype);
    EXPECT_EQ(got->shape, decl[i].shape);
    EXPECT_EQ(got->numel(), values[i].size());
    std::vector<float> back(got->numel());
    r.read_f32(*got, back.data());
    for (size_t k = 0; k < back.size(); ++k) {
      float want = decl[i].dtype == "F32"   ? values[i][k]
                   : decl[i].dtype == "F16" ? f16_to_f32(f32_to_f16(values[i][k]))
                                            : bf16_to_f32(f32_to_bf16(values[i][k]));
      EXPECT_EQ(std::bit_cast<uint32_t>(back[k]), std::bit_cast<uint32_t>(want)) << decl[i].name << "[" << k << "]";
    }
  }
  EXPECT_EQ(r.find("absent"), nullptr);
  EXPECT_EQ(r.find("scalar")->numel(), 1u);
  EXPECT_EQ(r.find("empty")->begin, r.find("empty")->end);
  // Offset order, back to back, in declaration order as written.
  EXPECT_EQ(r.tensors().front().name, "w32");
  EXPECT_EQ(r.tensors().front().begin, 0u);
  for (size_t i = 1; i < r.tensors().size(); ++i) EXPECT_EQ(r.tensors()[i].begin, r.tensors()[i - 1].end);
  // Raw bytes are the stored encoding.
  std::vector<uint16_t> raw(5);
  r.read_raw(*r.find("w16"), raw.data());
  EXPECT_EQ(raw[2], f32_to_f16(65519.0f));
  EXPECT_EQ(raw[3], 0x7C00);
}

TEST(Safetensors, HeaderIsPaddedAndInDeclarationOrder) {
  TempDir t;
  std::string path = t / "m.safetensors";
  for (size_t extra = 0; extra < 9; ++extra) {
    // Names of varying length move the unpadded size through every remainder mod 8.
    std::vector<SafetensorsTensor> decl = {{"zeta" + std::string(extra, 'x'), "F32", {1}, 0, 0}, {"alpha", "BF16", {2}, 0, 0}};
    SafetensorsWriter w(path, decl);
    float v[2] = {1.0f, 2.0f};
    w.write_f32(v);
    w.write_f32(v);
    w.close();
    std::string bytes = read_bytes(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u);
    std::string header = bytes.substr(8, n);
    std::string json = header.substr(0, header.find_last_not_of(' ') + 1);
    EXPECT_LT(header.size() - json.size(), 8u);
    EXPECT_EQ(json, R"({"__metadata__":{"format":"pt"},"zeta)" + std::string(extra, 'x') +
                        R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"alpha":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}})");
    EXPECT_EQ(bytes.size(), 8 + n + 8);
    EXPECT_EQ(SafetensorsReader(path).tensors().size(), 2u);
  }
}

TEST(Safetensors, WriterMetadataCanOverrideFormat) {
  TempDir t;
  SafetensorsWriter w(t / "m.safetensors", {}, {{"format", "np"}});
  w.close();
  EXPECT_EQ(SafetensorsReader(t / "m.safetensors").metadata().at("format"), "np");
}

TEST(Safetensors, WriterRejectsBadDeclarationsAsBugs) {
  TempDir t;
  EXPECT_THROW(SafetensorsWriter(t / "a", {{"x", "I32", {1}, 0, 0}}), InternalError);
  EXPECT_THROW(SafetensorsWriter(t / "a", {{"x", "F32", {1}, 0, 0}, {"x", "F16", {1}, 0, 0}}), InternalError);
  EXPECT_THROW(SafetensorsWriter(t / "a", {{"__metadata__", "F32", {1}, 0, 0}}), InternalError);
  EXPECT_THROW(SafetensorsWriter(t / "a", {{"x", "F32", {1ull << 62, 8}, 0, 0}}), InternalError);
}

TEST(Safetensors, WriterChecksEveryTensorIsWrittenOnce) {
  TempDir t;
  float v[2] = {1, 2};
  {
    SafetensorsWriter w(t / "a", {{"x", "F32", {2}, 0, 0}, {"y", "F16", {2}, 0, 0}});
    w.write_f32(v);
    EXPECT_THROW(w.close(), InternalError);
  }
  SafetensorsWriter w(t / "b", {{"x", "F32", {2}, 0, 0}});
  w.write_f32(v);
  EXPECT_THROW(w.write_f32(v), InternalError);
}

TEST(Safetensors, WriterIoErrorsNameThePath) {
  TempDir t;
  std::string msg = runtime_error_of([&] { SafetensorsWriter w(t / "no/such/dir/m.safetensors", {}); });
  EXPECT_NE(msg.find(t / "no/such/dir/m.safetensors: cannot create"), std::string::npos) << msg;
  msg = runtime_error_of([&] { SafetensorsWriter w("/dev/full", {{"x", "F32", {1}, 0, 0}}); });
  EXPECT_NE(msg.find("/dev/full: write failed"), std::string::npos) << msg;
}

TEST(Safetensors, WriterRejectsNonUtf8Names) {
  TempDir t;
  std::string msg = runtime_error_of([&] { SafetensorsWriter w(t / "m", {{"bad\xff", "F32", {1}, 0, 0}}); });
  EXPECT_NE(msg.find("tensor name is not valid UTF-8"), std::string::npos) << msg;
  msg = runtime_error_of([&] { SafetensorsWriter w(t / "m", {}, {{"k", "\xc3"}}); });
  EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
}

// --- safetensors: reading files from elsewhere -----------------------------------------------

TEST(Safetensors, ReadsForeignFileWithTrailingSpacesAndF64) {
  TempDir t;
  std::string path = t / "m.safetensors";
  double d[3] = {1.5, -1e300, 1e-3};
  std::string data(reinterpret_cast<const char*>(d), sizeof d);
  int32_t ints[2] = {7, -7};
  data += std::string(reinterpret_cast<const char*>(ints), sizeof ints);
  // Offsets in the header out of name order, trailing spaces and a newline after the JSON.
  std::string header = R"({"b":)" + entry("I32", "[2]", 24, 32) + R"(,"a":)" + entry("F64", "[3]", 0, 24) +
                       R"(,"__metadata__":{"format":"pt","x":"y"}}   )" + "\n  ";
  write_bytes(path, u64le(header.size()) + header + data);
  SafetensorsReader r(path);
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[0].name, "a");  // offset order
  EXPECT_EQ(r.metadata().at("x"), "y");
  float f[3];
  r.read_f32(*r.find("a"), f);
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_EQ(f[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(f[2], 1e-3f);
  int32_t back[2];
  r.read_raw(*r.find("b"), back);
  EXPECT_EQ(back[1], -7);
  std::string msg = runtime_error_of([&] { r.read_f32(*r.find("b"), f); });
  EXPECT_NE(msg.find(path + ": tensor \"b\": dtype I32 cannot be read as float"), std::string::npos) << msg;
}

TEST(Safetensors, EmptyHeaderObjectIsAValidEmptyFile) {
  TempDir t;
  write_bytes(t / "m", st_bytes("{}", 0));
  SafetensorsReader r(t / "m");
  EXPECT_TRUE(r.tensors().empty());
  EXPECT_TRUE(r.metadata().empty());
}

TEST(Safetensors, LargeTensorIsConvertedInChunks) {
  TempDir t;
  std::string path = t / "m";
  std::vector<float> v(200'000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f - 1000.0f;
  {
    SafetensorsWriter w(path, {{"big", "BF16", {400, 500}, 0, 0}, {"big16", "F16", {200'000}, 0, 0}});
    w.write_f32(v.data());
    w.write_f32(v.data());
    w.close();
  }
  SafetensorsReader r(path);
  std::vector<float> back(v.size());
  r.read_f32(*r.find("big"), back.data());
  for (size_t i = 0; i < v.size(); i += 997) ASSERT_EQ(back[i], bf16_to_f32(f32_to_bf16(v[i]))) << i;
  r.read_f32(*r.find("big16"), back.data());
  for (size_t i = 0; i < v.size(); i += 997) ASSERT_EQ(back[i], f16_to_f32(f32_to_f16(v[i]))) << i;
}

// --- safetensors: one test per rejection rule -------------------------------------------------

TEST(SafetensorsReject, MissingFileAndDirectory) {
  TempDir t;
  std::string msg = runtime_error_of([&] { SafetensorsReader r(t / "absent"); });
  EXPECT_NE(msg.find(t / "absent: cannot open"), std::string::npos) << msg;
  msg = runtime_error_of([&] { SafetensorsReader r(t.path()); });
  EXPECT_NE(msg.find(t.path() + ": not a regular file"), std::string::npos) << msg;
}

TEST(SafetensorsReject, ShorterThanTheLengthField) {
  expect_rejected("", "too short");
  expect_rejected(std::string("\x02\0\0\0", 4), "too short");
}

TEST(SafetensorsReject, HeaderLengthOverLimit) {
  expect_rejected(u64le(100'000'001) + "{}", "exceeds the limit of 100000000 bytes");
  expect_rejected(u64le(~0ull) + "{}", "exceeds the limit");
}

TEST(SafetensorsReject, HeaderLengthPastEndOfFile) {
  expect_rejected(u64le(3) + "{}", "runs past the end of the 10-byte file");
  expect_rejected(u64le(100'000'000) + "{}", "runs past the end");
}

TEST(SafetensorsReject, HeaderNotStartingWithBrace) {
  expect_rejected(u64le(0), "does not start with '{'");
  expect_rejected_header(" {}", 0, "does not start with '{'");
  // A JSON value that is not an object never starts with '{', so this rule covers non-objects.
  expect_rejected_header("[]", 0, "does not start with '{'");
  expect_rejected_header("\"{}\"", 0, "does not start with '{'");
}

TEST(SafetensorsReject, InvalidJson) {
  expect_rejected_header(R"({"a":)", 0, "header is not valid JSON");
  expect_rejected_header("{}x", 0, "header is not valid JSON");
  expect_rejected_header(std::string("{}\0\0", 4), 0, "header is not valid JSON");  // NUL padding is not spaces
  expect_rejected_header(R"({"a":1,})", 0, "header is not valid JSON");
}

TEST(SafetensorsReject, InvalidUtf8) {
  expect_rejected_header("{\"w\xff\":" + entry("F32", "[1]", 0, 4) + "}", 4, "header is not valid JSON");
  expect_rejected_header("{\"w\xc3\x28\":" + entry("F32", "[1]", 0, 4) + "}", 4, "header is not valid JSON");
}

TEST(SafetensorsReject, EntryNotAnObject) {
  expect_rejected_header(R"({"w":[1,2]})", 0, "entry is not a JSON object", "w");
}

TEST(SafetensorsReject, MissingFields) {
  expect_rejected_header(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4, "missing \"dtype\"", "w");
  expect_rejected_header(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4, "missing \"shape\"", "w");
  expect_rejected_header(R"({"w":{"dtype":"F32","shape":[1]}})", 4, "missing \"data_offsets\"", "w");
}

TEST(SafetensorsReject, WrongJsonTypes) {
  expect_rejected_header(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", 4, "\"dtype\" is not a string", "w");
  for (const char* shape : {"\"1\"", "[-1]", "[1.0]", "[1e0]", "[\"1\"]", "[[1]]", "{}", "null", "[18446744073709551616]"})
    expect_rejected_header(R"({"w":{"dtype":"F32","shape":)" + std::string(shape) + R"(,"data_offsets":[0,4]}})", 4,
                           "\"shape\" is not an array of non-negative integers", "w");
  for (const char* offsets : {"[0]", "[0,4,8]", "[-1,3]", "[0,4.0]", "{\"0\":4}", "4", "[]"})
    expect_rejected_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":)" + std::string(offsets) + "}}", 4,
                           "\"data_offsets\" is not [begin, end]", "w");
}

TEST(SafetensorsReject, UnknownDtype) {
  expect_rejected_header(R"({"w":)" + entry("F17", "[1]", 0, 4) + "}", 4, "unknown dtype \"F17\"", "w");
  expect_rejected_header(R"({"w":)" + entry("f32", "[1]", 0, 4) + "}", 4, "unknown dtype \"f32\"", "w");
  expect_rejected_header(R"({"w":)" + entry("", "[1]", 0, 4) + "}", 4, "unknown dtype \"\"", "w");
}

TEST(SafetensorsReject, SubByteDtypesAreUnsupported) {
  for (const char* dt : {"F4", "F6_E2M3", "F6_E3M2"}) {
    expect_rejected_header(R"({"w":)" + entry(dt, "[2]", 0, 1) + "}", 1,
                           std::string("dtype ") + dt + " packs elements into fractions of a byte", "w");
    EXPECT_EQ(safetensors_dtype_size(dt), 0u);
  }
  EXPECT_EQ(safetensors_dtype_size("C64"), 8u);
  EXPECT_EQ(safetensors_dtype_size("F8_E4M3"), 1u);
}

TEST(SafetensorsReject, ShapeOverflowingUint64) {
  expect_rejected_header(R"({"w":)" + entry("U8", "[4294967296,4294967296]", 0, 0) + "}", 0,
                         "has more bytes than fit in 64 bits", "w");
  // The element count fits; its byte size does not.
  expect_rejected_header(R"({"w":)" + entry("F32", "[4611686018427387904]", 0, 0) + "}", 0,
                         "has more bytes than fit in 64 bits", "w");
  // A zero dimension does not excuse an overflow met before it.
  expect_rejected_header(R"({"w":)" + entry("U8", "[4294967296,4294967296,0]", 0, 0) + "}", 0,
                         "has more bytes than fit in 64 bits", "w");
}

TEST(SafetensorsReject, EndBeforeBegin) {
  expect_rejected_header(R"({"w":)" + entry("F32", "[1]", 8, 4) + "}", 8, "[8, 4] end before they begin", "w");
}

TEST(SafetensorsReject, SizeDisagreesWithShape) {
  expect_rejected_header(R"({"w":)" + entry("F32", "[2]", 0, 4) + "}", 4,
                         "hold 4 bytes, but shape [2] of F32 needs 8", "w");
  expect_rejected_header(R"({"w":)" + entry("BF16", "[]", 0, 4) + "}", 4, "of BF16 needs 2", "w");
}

TEST(SafetensorsReject, OverlappingOffsets) {
  expect_rejected_header(R"({"a":)" + entry("F32", "[2]", 0, 8) + R"(,"b":)" + entry("F32", "[2]", 4, 12) + "}", 12,
                         "overlaps tensor \"a\", which ends at 8", "b");
  // Two tensors sharing the same bytes.
  expect_rejected_header(R"({"a":)" + entry("F32", "[1]", 0, 4) + R"(,"b":)" + entry("F32", "[1]", 0, 4) + "}", 4,
                         "overlaps tensor", "b");
}

TEST(SafetensorsReject, HoleBetweenTensors) {
  expect_rejected_header(R"({"a":)" + entry("F32", "[2]", 0, 8) + R"(,"b":)" + entry("F32", "[2]", 12, 20) + "}", 20,
                         "leaving a hole of 4 bytes after tensor \"a\"", "b");
  // An empty tensor placed beyond the end of the data is a hole too.
  expect_rejected_header(R"({"a":)" + entry("F32", "[1]", 0, 4) + R"(,"e":)" + entry("F32", "[0]", 100, 100) + "}", 4,
                         "leaving a hole", "e");
}

TEST(SafetensorsReject, DataNotStartingAtZero) {
  expect_rejected_header(R"({"a":)" + entry("F32", "[2]", 4, 12) + "}", 12, "the first tensor's data must start at 0", "a");
}

TEST(SafetensorsReject, FileSizeDisagreesWithLastTensor) {
  std::string header = R"({"a":)" + entry("F32", "[2]", 0, 8) + "}";
  expect_rejected_header(header, 9, "data ends at byte 8 of the data buffer, but the file holds 9 bytes");
  expect_rejected_header(header, 7, "but the file holds 7 bytes");
  expect_rejected_header("{}", 1, "but the file holds 1 bytes");
}

TEST(SafetensorsReject, DuplicateNames) {
  expect_rejected_header(R"({"a":)" + entry("F32", "[1]", 0, 4) + R"(,"a":)" + entry("F32", "[1]", 4, 8) + "}", 8,
                         "duplicate tensor name \"a\"");
  expect_rejected_header(R"({"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", 4,
                         "duplicate key \"dtype\"");
  expect_rejected_header(R"({"__metadata__":{"k":"v","k":"w"}})", 0, "duplicate key \"k\"");
}

TEST(SafetensorsReject, MetadataNotAStringMap) {
  expect_rejected_header(R"({"__metadata__":{"format":"pt","n":1}})", 0, "__metadata__ value for \"n\" is not a string");
  expect_rejected_header(R"({"__metadata__":["pt"]})", 0, "__metadata__ is not an object of strings");
  expect_rejected_header(R"({"__metadata__":"pt"})", 0, "__metadata__ is not an object of strings");
  expect_rejected_header(R"({"__metadata__":{"a":{"b":"c"}}})", 0, "is not a string");
}

TEST(SafetensorsReject, DeeplyNestedJson) {
  std::string deep = std::string(100, '[') + std::string(100, ']');
  expect_rejected_header(R"({"a":{"dtype":"F32","x":)" + deep + R"(,"shape":[1],"data_offsets":[0,4]}})", 4,
                         "nests deeper than");
}

TEST(SafetensorsReject, ErrorsQuoteHostileNames) {
  // A newline and a quote in a tensor name stay escaped in the one-line message.
  std::string msg;
  {
    TempDir t;
    write_bytes(t / "m", st_bytes(R"({"a\n\"b":)" + entry("F32", "[1]", 0, 8) + "}", 8));
    msg = runtime_error_of([&] { SafetensorsReader r(t / "m"); });
  }
  EXPECT_NE(msg.find(R"(tensor "a\n\"b")"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}
