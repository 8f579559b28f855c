#include "tok/regex_split.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.hpp"

namespace bellows::tok {

const char* const kPatternGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kPatternCl100k =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kPatternO200k =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string pattern_by_name(const std::string& s) {
  if (s == "gpt2" || s == "r50k" || s == "p50k") return kPatternGpt2;
  if (s == "cl100k" || s == "llama3") return kPatternCl100k;
  if (s == "o200k") return kPatternO200k;
  return s;
}

struct RegexSplitter::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ~Impl() {
    if (md) pcre2_match_data_free(md);
    if (mctx) pcre2_match_context_free(mctx);
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
    if (code) pcre2_code_free(code);
  }
};

RegexSplitter::RegexSplitter(const std::string& pattern, const std::string& what) : impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                              &off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw UsageError(what + ": pre-tokenizer regex does not compile at offset " + std::to_string(off) + ": " +
                     reinterpret_cast<char*>(msg));
  }
  // JIT when the platform has it (silently the interpreter otherwise: same results, slower).
  if (pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0) {
    impl_->jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
    impl_->mctx = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(impl_->mctx, nullptr, impl_->jit_stack);
  }
  impl_->md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

void RegexSplitter::split(std::string_view text, bool keep_gaps, std::vector<std::string_view>& out) const {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, gap = 0;
  // Text is valid UTF-8 (checked once by the caller), so PCRE2 need not check it per call.
  uint32_t opts = PCRE2_NO_UTF_CHECK;
  while (pos < text.size()) {
    int rc = pcre2_match(impl_->code, subject, text.size(), pos, opts, impl_->md, impl_->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw RuntimeError(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<char*>(msg));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(impl_->md);
    size_t start = ov[0], end = ov[1];
    if (keep_gaps && start > gap) out.push_back(text.substr(gap, start - gap));
    if (end > start) {
      out.push_back(text.substr(start, end - start));
      pos = end;
    } else {
      // An empty match: step over one character so the loop advances.
      pos = start + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      if (keep_gaps) out.push_back(text.substr(start, pos - start));
    }
    gap = pos;
  }
  if (keep_gaps && gap < text.size()) out.push_back(text.substr(gap));
}

}  // namespace bellows::tok
