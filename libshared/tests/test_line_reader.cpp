#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <fstream>

#include "core/error.hpp"
#include "io/line_reader.hpp"
#include "io/zstd_writer.hpp"
#include "test_util.hpp"

using namespace bellows;
using bellows::testing::TempDir;
using bellows::testing::runtime_error_of;

namespace {

void write_file(const std::string& p, const std::string& data) { std::ofstream(p, std::ios::binary) << data; }

std::string gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string zstd(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3));
  return out;
}

std::vector<std::string> all_lines(const std::string& p, size_t max = 1 << 20, std::vector<uint64_t>* too_long = nullptr) {
  io::LineReader r(p, max);
  std::vector<std::string> out;
  std::string line;
  for (;;) {
    auto st = r.next(line);
    if (st == io::LineReader::Status::eof) break;
    if (st == io::LineReader::Status::too_long) {
      if (too_long) too_long->push_back(r.line_number());
      continue;
    }
    out.push_back(line);
  }
  return out;
}

}  // namespace

TEST(LineReader, ReadsPlainGzipAndZstdAlike) {
  TempDir t;
  std::string data;
  for (int i = 0; i < 100000; ++i) data += "{\"text\": \"line " + std::to_string(i) + "\"}\n";
  data += "last line without newline";
  write_file(t / "a.jsonl", data);
  write_file(t / "a.jsonl.gz", gzip(data));
  write_file(t / "a.jsonl.zst", zstd(data));
  auto plain = all_lines(t / "a.jsonl");
  ASSERT_EQ(plain.size(), 100001u);
  EXPECT_EQ(plain.back(), "last line without newline");
  EXPECT_EQ(all_lines(t / "a.jsonl.gz"), plain);
  EXPECT_EQ(all_lines(t / "a.jsonl.zst"), plain);
}

TEST(LineReader, ConcatenatedGzipMembersAndZstdFramesAreOneStream) {
  TempDir t;
  write_file(t / "c.gz", gzip("a\nb\n") + gzip("c\n"));
  EXPECT_EQ(all_lines(t / "c.gz"), (std::vector<std::string>{"a", "b", "c"}));
  write_file(t / "c.zst", zstd("a\nb\n") + zstd("c\n"));
  EXPECT_EQ(all_lines(t / "c.zst"), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(LineReader, OverlongLinesAreSkippedNotBuffered) {
  TempDir t;
  std::string big(5 << 20, 'x');  // 5 MB line, limit 1 MB
  write_file(t / "big.jsonl", "short\n" + big + "\nafter\n" + big);
  std::vector<uint64_t> too_long;
  EXPECT_EQ(all_lines(t / "big.jsonl", 1 << 20, &too_long), (std::vector<std::string>{"short", "after"}));
  EXPECT_EQ(too_long, (std::vector<uint64_t>{2, 4}));
}

TEST(LineReader, TruncatedCompressedFilesNameFileAndLine) {
  TempDir t;
  std::string data;
  for (int i = 0; i < 20000; ++i) data += "line " + std::to_string(i) + " with some words to compress\n";
  std::string gz = gzip(data), zs = zstd(data);
  write_file(t / "cut.gz", gz.substr(0, gz.size() / 2));
  write_file(t / "cut.zst", zs.substr(0, zs.size() / 2));
  std::string e = runtime_error_of([&] { all_lines(t / "cut.gz"); });
  EXPECT_NE(e.find(t / "cut.gz:"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated gzip"), std::string::npos) << e;
  e = runtime_error_of([&] { all_lines(t / "cut.zst"); });
  EXPECT_NE(e.find(t / "cut.zst:"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated zstd"), std::string::npos) << e;
  write_file(t / "junk.gz", "this is not gzip at all");
  EXPECT_NE(runtime_error_of([&] { all_lines(t / "junk.gz"); }).find("corrupt gzip"), std::string::npos);
  EXPECT_NE(runtime_error_of([&] { all_lines(t / "missing.jsonl"); }).find("missing.jsonl: cannot open"), std::string::npos);
}

TEST(ZstdWriter, PartsConcatenateIntoOneReadableFile) {
  TempDir t;
  {
    io::ZstdWriter a(t / "a.zst"), b(t / "b.zst");
    a.write_line("one");
    a.write_line("two");
    b.write_line("three");
    a.close();
    b.close();
  }
  io::append_file(t / "all.zst", t / "a.zst");
  io::append_file(t / "all.zst", t / "b.zst");
  EXPECT_EQ(all_lines(t / "all.zst"), (std::vector<std::string>{"one", "two", "three"}));
}
