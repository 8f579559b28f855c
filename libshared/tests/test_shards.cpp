#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "io/doc_shard.hpp"
#include "io/sample_shards.hpp"
#include "io/schema.hpp"
#include "io/shard.hpp"
#include "test_util.hpp"

using namespace bellows;
using bellows::testing::TempDir;
using bellows::testing::runtime_error_of;

namespace {

io::Provenance prov() {
  io::Provenance p;
  p.tool = "unit-test";
  p.config = {{"k", 1}};
  p.inputs = {"a.jsonl", "b.jsonl"};
  return p;
}

// Opens a file read-write with HDF5 directly, to damage it the way a disk or a user might.
struct RawFile {
  h5::Handle f;
  explicit RawFile(const std::string& p) {
    h5::init_library();
    f = h5::check(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), p);
  }
};

}  // namespace

TEST(DocShard, RoundTripsEveryField) {
  TempDir t;
  std::vector<io::Document> docs = {
      {"d0", "hello world", "in.jsonl:1", "en", 0.99f},
      {"d1", "", "in.jsonl:2", "un", 0.0f},  // empty text stays representable
      {"d2", "Grüße 数据 🙂 \n\t end", "in.jsonl:3", "de", 0.5f},
  };
  for (int i = 0; i < 5000; ++i) docs.push_back({"x" + std::to_string(i), std::string(300, 'a' + i % 26), "big:" + std::to_string(i), "en", 0.25f});
  {
    io::DocShardWriter w(t / "docs.h5", prov());
    for (const auto& d : docs) w.add(d);
    w.close();
  }
  io::DocShardReader r(t / "docs.h5");
  ASSERT_EQ(r.size(), docs.size());
  std::vector<io::Document> back = r.read_block(0, r.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(back[i].id, docs[i].id);
    EXPECT_EQ(back[i].text, docs[i].text);
    EXPECT_EQ(back[i].source, docs[i].source);
    EXPECT_EQ(back[i].lang, docs[i].lang);
    EXPECT_EQ(back[i].lang_score, docs[i].lang_score);
  }
  EXPECT_EQ(r.get(2).text, docs[2].text);
  EXPECT_EQ(r.file().attr_string("tool"), "unit-test");
  EXPECT_EQ(nlohmann::json::parse(r.file().attr_string("inputs")), nlohmann::json({"a.jsonl", "b.jsonl"}));
  EXPECT_EQ(nlohmann::json::parse(r.file().attr_string("config"))["k"], 1);
  EXPECT_THROW(r.read_block(docs.size() - 1, 2), RuntimeError);
}

// Every kind in schemas/ has a writer in libshared, and that writer's output conforms to the
// schema exactly (strict: nothing missing, nothing undocumented). Adding a schema without a
// writer, or a dataset to a writer without documenting it, fails here.
TEST(Schemas, EveryKindHasAWriterWhoseOutputConformsStrictly) {
  TempDir t;
  EXPECT_EQ(io::sample_kinds(), schema::names());
  for (const auto& kind : schema::names()) {
    SCOPED_TRACE(kind);
    std::string path = t / (kind + ".h5");
    io::write_sample_shard(kind, path, 7);
    io::ShardReader r(path, kind);
    EXPECT_EQ(r.kind(), kind);
    EXPECT_EQ(r.version(), schema::get(kind).version);
    EXPECT_EQ(schema::validate(r.handle(), schema::get(kind), /*strict=*/true), std::vector<std::string>{});
    r.verify_all_chunks();
  }
}

// The binary checks files against the schemas/ it was built from: the embedded text must be
// the text in the tree (a stale build would otherwise validate against old schemas).
TEST(Schemas, EmbeddedSchemasAreTheFilesInTheTree) {
  namespace fs = std::filesystem;
  ASSERT_TRUE(fs::is_directory("schemas")) << "run from the repository root";
  size_t n = 0;
  for (const auto& e : fs::directory_iterator("schemas")) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(schema::source(e.path().stem().string()), ss.str()) << e.path();
    ++n;
  }
  EXPECT_EQ(n, schema::names().size() + 1);  // + common.json
}

TEST(Schemas, EveryDatasetAndAttributeIsDocumented) {
  for (const auto& kind : schema::names()) {
    const auto& s = schema::get(kind);
    EXPECT_FALSE(s.title.empty()) << kind;
    EXPECT_FALSE(s.description.empty()) << kind;
    for (const auto& a : s.attributes) EXPECT_FALSE(a.doc.empty()) << kind << ": " << a.name;
    for (const auto& d : s.datasets) EXPECT_FALSE(d.doc.empty()) << kind << ": " << d.name;
  }
}

TEST(ShardReader, RefusesAFileOfAnotherKind) {
  TempDir t;
  io::write_sample_shard("tokens_sft", t / "sft.h5", 1);
  std::string e = runtime_error_of([&] { io::ShardReader(t / "sft.h5", "docs"); });
  EXPECT_NE(e.find(t / "sft.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("is a 'tokens_sft' file, expected 'docs'"), std::string::npos) << e;
}

TEST(ShardReader, RefusesANewerSchemaVersion) {
  TempDir t;
  io::write_sample_shard("docs", t / "d.h5", 1);
  { RawFile f(t / "d.h5"); h5::write_attr(f.f.get(), "schema_version", int64_t{99}); }
  std::string e = runtime_error_of([&] { io::DocShardReader r(t / "d.h5"); });
  EXPECT_NE(e.find("d.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("newer bellows"), std::string::npos) << e;
}

TEST(ShardReader, RefusesNonHdf5AndMissingFiles) {
  TempDir t;
  std::ofstream(t / "x.h5") << "not hdf5 at all";
  EXPECT_NE(runtime_error_of([&] { io::ShardReader::open_any(t / "x.h5"); }).find("not an HDF5 file"), std::string::npos);
  EXPECT_NE(runtime_error_of([&] { io::ShardReader::open_any(t / "none.h5"); }).find("none.h5"), std::string::npos);
}

TEST(ShardReader, RefusesHdf5FilesThatAreNotOurs) {
  TempDir t;
  h5::init_library();
  { h5::Handle f(H5Fcreate((t / "plain.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)); }
  EXPECT_NE(runtime_error_of([&] { io::ShardReader::open_any(t / "plain.h5"); }).find("not a bellows file"), std::string::npos);
}

TEST(ShardReader, ReportsMissingDatasetsAndWrongShapes) {
  TempDir t;
  io::write_sample_shard("docs", t / "a.h5", 1);
  { RawFile f(t / "a.h5"); H5Ldelete(f.f.get(), "lang_score", H5P_DEFAULT); }
  std::string e = runtime_error_of([&] { io::DocShardReader r(t / "a.h5"); });
  EXPECT_NE(e.find("missing dataset 'lang_score'"), std::string::npos) << e;

  io::write_sample_shard("docs", t / "b.h5", 1);
  { RawFile f(t / "b.h5"); h5::write_attr(f.f.get(), "num_docs", uint64_t{5}); }
  e = runtime_error_of([&] { io::DocShardReader r(t / "b.h5"); });
  EXPECT_NE(e.find("should be num_docs+1 = 6"), std::string::npos) << e;

  io::write_sample_shard("docs", t / "c.h5", 1);
  { RawFile f(t / "c.h5"); H5Adelete(f.f.get(), "config"); }
  e = runtime_error_of([&] { io::DocShardReader r(t / "c.h5"); });
  EXPECT_NE(e.find("missing attribute 'config'"), std::string::npos) << e;
}

TEST(ShardReader, StrictValidationFindsUndocumentedDatasets) {
  TempDir t;
  io::write_sample_shard("lora_adapter", t / "l.h5", 1);
  {
    RawFile f(t / "l.h5");
    hsize_t dims[1] = {3};
    h5::Handle space(H5Screate_simple(1, dims, nullptr));
    h5::Handle ds(H5Dcreate2(f.f.get(), "extra", H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  }
  io::ShardReader r(t / "l.h5", "lora_adapter");  // readers tolerate extras...
  auto problems = schema::validate(r.handle(), schema::get("lora_adapter"), true);  // ...strict does not
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("'extra'"), std::string::npos);
}

// A flipped byte inside a stored chunk is caught by the Fletcher32 checksum, and the error
// names the file and the dataset.
TEST(ShardReader, DetectsACorruptedChunk) {
  TempDir t;
  std::string path = t / "docs.h5";
  io::write_sample_shard("docs", path, 3);
  haddr_t addr = 0;
  hsize_t size = 0;
  {
    RawFile f(path);
    h5::Handle ds(H5Dopen2(f.f.get(), "text_data", H5P_DEFAULT));
    hsize_t offset[1];
    unsigned mask = 0;
    h5::Handle space(H5Dget_space(ds.get()));
    ASSERT_GE(H5Dget_chunk_info(ds.get(), space.get(), 0, offset, &mask, &addr, &size), 0);
  }
  ASSERT_GT(size, 100u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(addr + size / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(addr + size / 2));
    f.write(&c, 1);
  }
  io::DocShardReader r(path);  // metadata is intact: opening works
  std::string e = runtime_error_of([&] { r.read_block(0, r.size()); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("text_data"), std::string::npos) << e;
  EXPECT_NE(e.find("corrupt"), std::string::npos) << e;
  EXPECT_NE(runtime_error_of([&] { r.file().verify_all_chunks(); }).find("text_data"), std::string::npos);
  // The other columns are untouched and still read.
  EXPECT_NO_THROW(r.file().read_all<float>("lang_score"));
}

TEST(ShardWriter, RefusesWhatTheSchemaDoesNotDescribe) {
  TempDir t;
  io::ShardWriter w(t / "x.h5", "docs", prov());
  EXPECT_THROW(w.declare("not_in_schema"), InternalError);
  w.declare("lang_score");
  uint32_t wrong_type = 1;
  EXPECT_THROW(w.append("lang_score", &wrong_type, 1), InternalError);
  // Closing a file that lacks required datasets is a bug of the writer, not a user error.
  EXPECT_THROW(w.close(), InternalError);
}

TEST(ShardWriter, AppendsAcrossChunkBoundariesInAnyPieceSizes) {
  TempDir t;
  io::ShardWriter w(t / "p.h5", "tokens_pretrain", prov());
  const uint64_t seq = 15, rows = 70001;  // 16 uint32 per row: 16384 rows per 1 MiB chunk
  w.declare("tokens", {seq + 1});
  std::vector<uint32_t> all(rows * (seq + 1));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint32_t>(i * 2654435761u);
  size_t pos = 0, piece = 1;
  while (pos < rows) {
    size_t n = std::min(piece, static_cast<size_t>(rows - pos));
    w.append("tokens", all.data() + pos * (seq + 1), n * (seq + 1));
    pos += n;
    piece = piece * 3 + 1;
  }
  io::RaggedColumn<uint32_t> starts(w, "doc_start");
  uint32_t zero = 0;
  for (uint64_t i = 0; i < rows; ++i) starts.add(&zero, 1);
  w.set_attr("num_samples", rows);
  w.set_attr("seq_len", seq);
  w.set_attr("vocab_size", uint64_t{1} << 32);
  w.set_attr("tokenizer_sha256", "x");
  w.set_attr("eos_id", int64_t{0});
  w.set_attr("bos_id", int64_t{-1});
  w.close();
  io::ShardReader r(t / "p.h5", "tokens_pretrain");
  EXPECT_EQ(r.read_all<uint32_t>("tokens"), all);
  EXPECT_EQ(r.read_rows<uint32_t>("tokens", 16384, 1),
            std::vector<uint32_t>(all.begin() + 16384 * 16, all.begin() + 16385 * 16));
  EXPECT_EQ(r.ragged<uint32_t>("doc_start", 12345), std::vector<uint32_t>{0});
}
