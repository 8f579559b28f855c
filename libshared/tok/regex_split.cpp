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

namespace {

// ASCII classes for the cl100k scanner. kHigh: a byte >= 0x80, whose class the scanner does not
// decide (PCRE2 does); kEnd: past the end of the text.
enum : uint8_t { kOther, kLetter, kDigit, kBlank, kNewline, kHigh, kEnd };

struct AsciiClasses {
  uint8_t c[256];
  constexpr AsciiClasses() : c{} {
    for (int b = 0; b < 256; ++b) {
      uint8_t k = kOther;  // [^\s\p{L}\p{N}]: punctuation, symbols, control characters
      if (b >= 0x80) k = kHigh;
      else if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) k = kLetter;
      else if (b >= '0' && b <= '9') k = kDigit;
      else if (b == '\r' || b == '\n') k = kNewline;
      else if (b == ' ' || b == '\t' || b == '\v' || b == '\f') k = kBlank;  // the rest of \s
      c[b] = k;
    }
  }
};
constexpr AsciiClasses kClasses;

// The length of the match of kPatternCl100k at `pos`, decided from ASCII bytes alone, or 0 when
// the match depends on a byte >= 0x80 (a letter? a space? a case variant of 's'?): the caller
// then asks PCRE2. Mirrors the pattern's alternatives in order, with its backtracking worked out:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n]*
//   | \s*[\r\n]+ | \s+(?!\S) | \s+
// Every ASCII character starts a non-empty match of one of them, so there are no gaps.
size_t cl100k_ascii_match(const unsigned char* s, size_t n, size_t pos) {
  auto cls = [&](size_t i) -> uint8_t { return i < n ? kClasses.c[s[i]] : uint8_t{kEnd}; };
  const uint8_t c = cls(pos);
  if (c == kHigh) return 0;
  if (s[pos] == '\'') {  // contractions, case-insensitively
    if (pos + 1 < n) {
      unsigned char d = s[pos + 1];
      if (d >= 0x80) return 0;  // U+017F folds to 's'
      d |= 0x20;
      if (d == 's' || d == 't' || d == 'm' || d == 'd') return 2;
      if (pos + 2 < n) {
        unsigned char e = s[pos + 2];
        if (e >= 0x80) return 0;
        e |= 0x20;
        if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return 3;
      }
    }
  }
  if (c == kLetter || c == kOther || c == kBlank) {  // an optional non-letter, then letters
    size_t i = pos;
    if (c != kLetter) {
      const uint8_t d = cls(pos + 1);
      if (d == kHigh) return 0;
      i = d == kLetter ? pos + 1 : n + 1;  // n + 1: the alternative fails
    }
    if (i <= n) {
      while (cls(i) == kLetter) ++i;
      if (cls(i) == kHigh) return 0;
      return i - pos;
    }
  }
  if (c == kDigit) {  // one to three digits
    size_t i = pos + 1;
    while (i < pos + 3 && cls(i) == kDigit) ++i;
    if (i < pos + 3 && cls(i) == kHigh) return 0;
    return i - pos;
  }
  size_t start = n + 1;  // an optional space, symbols, then newlines
  if (c == kOther) start = pos;
  else if (s[pos] == ' ') {
    const uint8_t d = cls(pos + 1);
    if (d == kHigh) return 0;
    if (d == kOther) start = pos + 1;
  }
  if (start <= n) {
    size_t i = start;
    while (cls(i) == kOther) ++i;
    if (cls(i) == kHigh) return 0;
    while (cls(i) == kNewline) ++i;
    return i - pos;
  }
  // Whitespace: c is kBlank or kNewline. W = the run of whitespace from pos.
  size_t j = pos, last_newline = n;
  for (uint8_t k = c; k == kBlank || k == kNewline; k = cls(++j))
    if (k == kNewline) last_newline = j;
  if (cls(j) == kHigh) return 0;  // W may go on with a non-ASCII space
  if (last_newline < n) return last_newline + 1 - pos;  // \s*[\r\n]+ ends at W's last newline
  if (j == n) return j - pos;                          // \s+(?!\S) at the end of the text
  if (j - pos >= 2) return j - pos - 1;                // \s+(?!\S): all but W's last character
  return 1;                                            // \s+
}

}  // namespace

struct RegexSplitter::Impl {
  bool cl100k = false;  // the pattern is kPatternCl100k: ASCII stretches skip PCRE2
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

RegexSplitter::RegexSplitter(const std::string& pattern, const std::string& what, bool ascii_fast_path)
    : impl_(std::make_unique<Impl>()) {
  impl_->cl100k = ascii_fast_path && pattern == kPatternCl100k;
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
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  while (pos < text.size()) {
    if (impl_->cl100k) {
      if (size_t len = cl100k_ascii_match(bytes, text.size(), pos)) {
        if (keep_gaps && pos > gap) out.push_back(text.substr(gap, pos - gap));
        out.push_back(text.substr(pos, len));
        pos += len;
        gap = pos;
        continue;
      }
    }
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
