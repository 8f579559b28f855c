// Pre-tokenisation: splitting text into pieces with a regular expression, through PCRE2 with
// Unicode properties (UTF + UCP) and JIT, as tiktoken (fancy-regex) and HF tokenizers (Oniguruma)
// do it. Invalid UTF-8 never reaches here: Tokenizer repairs it first.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bellows::tok {

// The pre-tokeniser patterns of the common tokenizers.
extern const char* const kPatternGpt2;     // GPT-2, r50k, p50k; HF ByteLevel(use_regex=true)
extern const char* const kPatternCl100k;   // cl100k_base, Llama 3
extern const char* const kPatternO200k;    // o200k_base
// "gpt2" | "cl100k" | "o200k" -> pattern; anything else is taken as a regex itself.
std::string pattern_by_name(const std::string& name_or_regex);

class RegexSplitter {
 public:
  // Throws UsageError naming `what` (e.g. the file) when the pattern does not compile.
  // For kPatternCl100k, matches decided by ASCII bytes alone come from a hand-written scanner
  // (several times faster than PCRE2's JIT) unless ascii_fast_path is false; the tests compare
  // the two on random text.
  RegexSplitter(const std::string& pattern, const std::string& what, bool ascii_fast_path = true);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Appends to `out` the pieces of `text`: every match, and (keep_gaps) the text between
  // matches, in order (HF's Split behaviour "Isolated"; without gaps: "Removed"). Not
  // thread-safe: one splitter per thread.
  void split(std::string_view text, bool keep_gaps, std::vector<std::string_view>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bellows::tok
