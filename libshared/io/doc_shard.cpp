#include "io/doc_shard.hpp"

#include "core/error.hpp"

namespace bellows::io {
namespace {
const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
}  // namespace

DocShardWriter::DocShardWriter(const std::string& path, const Provenance& prov)
    : w_(path, "docs", prov), text_(w_, "text"), id_(w_, "id"), source_(w_, "source"), lang_(w_, "lang") {
  w_.declare("lang_score");
}

void DocShardWriter::add(const Document& d) {
  text_.add(bytes(d.text), d.text.size());
  id_.add(bytes(d.id), d.id.size());
  source_.add(bytes(d.source), d.source.size());
  lang_.add(bytes(d.lang), d.lang.size());
  w_.append("lang_score", &d.lang_score, 1);
  ++n_;
}

void DocShardWriter::close() {
  w_.set_attr("num_docs", n_);
  w_.close();
}

DocShardReader::DocShardReader(const std::string& path) : r_(path, "docs") { n_ = r_.attr_uint("num_docs"); }

std::vector<std::string> DocShardReader::read_strings(const std::string& col, uint64_t first, uint64_t count) const {
  std::vector<uint64_t> off = r_.read_rows<uint64_t>(col + "_offsets", first, count + 1);
  for (uint64_t i = 0; i < count; ++i)
    if (off[i + 1] < off[i])
      throw RuntimeError(r_.path() + ": dataset '" + col + "_offsets' decreases at document " + std::to_string(first + i) +
                         " (corrupt file)");
  std::vector<uint8_t> data = r_.read_rows<uint8_t>(col + "_data", off[0], off[count] - off[0]);
  std::vector<std::string> out;
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i)
    out.emplace_back(reinterpret_cast<const char*>(data.data() + (off[i] - off[0])), off[i + 1] - off[i]);
  return out;
}

std::vector<Document> DocShardReader::read_block(uint64_t first, uint64_t count) const {
  if (first + count > n_)
    throw RuntimeError(r_.path() + ": documents " + std::to_string(first) + ".." + std::to_string(first + count) +
                       " out of range (it has " + std::to_string(n_) + ")");
  std::vector<std::string> text = read_strings("text", first, count), id = read_strings("id", first, count),
                           source = read_strings("source", first, count), lang = read_strings("lang", first, count);
  std::vector<float> score = r_.read_rows<float>("lang_score", first, count);
  std::vector<Document> out(count);
  for (uint64_t i = 0; i < count; ++i)
    out[i] = Document{std::move(id[i]), std::move(text[i]), std::move(source[i]), std::move(lang[i]), score[i]};
  return out;
}

}  // namespace bellows::io
