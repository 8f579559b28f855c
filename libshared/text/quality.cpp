#include "text/quality.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>

#include "core/error.hpp"

namespace bellows::text {
namespace {

// Every switch, in evaluation order; the first kNumRules can fail a document, the rest are C4's line rules.
enum Rule : int {
  kDupParaFrac,
  kDupParaCharFrac,
  kDupLineFrac,
  kDupLineCharFrac,
  kTop2Gram,
  kTop3Gram,
  kTop4Gram,
  kDup5Gram,
  kDup6Gram,
  kDup7Gram,
  kDup8Gram,
  kDup9Gram,
  kDup10Gram,
  kMinWords,
  kMaxWords,
  kMinAvgWordLen,
  kMaxAvgWordLen,
  kHashWordRatio,
  kEllipsisWordRatio,
  kBulletLinesRatio,
  kEllipsisLinesRatio,
  kAlphaWordsRatio,
  kStopWords,
  kLoremIpsum,
  kCurlyBracket,
  kMinSentences,
  kLinePunctRatio,
  kShortLineRatio,
  kCharDupRatio,
  kListRatio,
  kNumRules,
  kLineLongWord = kNumRules,
  kLineTerminalPunct,
  kLineMinWords,
  kLineJavascript,
  kLinePolicy,
  kNumSwitches
};

constexpr std::array<const char*, kNumSwitches> kNames = {
    "gopher_repetition:dup_para_frac",
    "gopher_repetition:dup_para_char_frac",
    "gopher_repetition:dup_line_frac",
    "gopher_repetition:dup_line_char_frac",
    "gopher_repetition:top_2_gram",
    "gopher_repetition:top_3_gram",
    "gopher_repetition:top_4_gram",
    "gopher_repetition:dup_5_gram",
    "gopher_repetition:dup_6_gram",
    "gopher_repetition:dup_7_gram",
    "gopher_repetition:dup_8_gram",
    "gopher_repetition:dup_9_gram",
    "gopher_repetition:dup_10_gram",
    "gopher_quality:min_words",
    "gopher_quality:max_words",
    "gopher_quality:min_avg_word_len",
    "gopher_quality:max_avg_word_len",
    "gopher_quality:hash_word_ratio",
    "gopher_quality:ellipsis_word_ratio",
    "gopher_quality:bullet_lines_ratio",
    "gopher_quality:ellipsis_lines_ratio",
    "gopher_quality:alpha_words_ratio",
    "gopher_quality:stop_words",
    "c4:lorem_ipsum",
    "c4:curly_bracket",
    "c4:min_sentences",
    "fineweb:line_punct_ratio",
    "fineweb:short_line_ratio",
    "fineweb:char_dup_ratio",
    "fineweb:list_ratio",
    "c4:line_long_word",
    "c4:line_terminal_punct",
    "c4:line_min_words",
    "c4:line_javascript",
    "c4:line_policy",
};

constexpr std::string_view kPolicyPhrases[] = {"terms of use", "privacy policy", "cookie policy",
                                               "uses cookies", "use of cookies", "use cookies"};

class Switches {
 public:
  explicit Switches(const QualityConfig& cfg) : cfg_(cfg) {}

  bool on(Rule r) const {
    return family_on(r) && (cfg_.disabled_rules.empty() || !cfg_.disabled_rules.contains(std::string_view(kNames[r])));
  }

 private:
  bool family_on(Rule r) const {
    if (r <= kDup10Gram) return cfg_.gopher_repetition;
    if (r <= kStopWords) return cfg_.gopher_quality;
    if (r <= kMinSentences || r >= kNumRules) return cfg_.c4;
    return cfg_.fineweb;
  }

  const QualityConfig& cfg_;
};

QualityVerdict fail(Rule r) { return QualityVerdict{false, kNames[r]}; }

// A measure with nothing to measure over is 0, so empty documents fail minimum rules instead of yielding NaN.
double frac(size_t num, size_t den) { return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den); }

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

enum class Cls : uint8_t { other, letter, punct, space, newline };

constexpr std::array<Cls, 128> make_ascii_classes() {
  std::array<Cls, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if (c == '\n')
      t[c] = Cls::newline;
    else if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F))  // Python's str.split() set
      t[c] = Cls::space;
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
      t[c] = Cls::letter;
    else if ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~'))
      t[c] = Cls::punct;  // exactly string.punctuation
    else
      t[c] = Cls::other;
  }
  return t;
}
constexpr std::array<Cls, 128> kAsciiClasses = make_ascii_classes();

Cls classify(int32_t cp) {
  if (cp < 0) return Cls::other;
  if (cp < 128) return kAsciiClasses[cp];
  if (cp == 0x85) return Cls::space;  // NEL: a separator for str.split() although its category is Cc
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: return Cls::space;
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return Cls::letter;  // what Python's str.isalpha() accepts
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: return Cls::punct;
    default: return Cls::other;
  }
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// ASCII case-insensitive search for a lowercase needle; every phrase the rules look for is ASCII.
bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0, last = hay.size() - needle.size(); i <= last; ++i) {
    if (ascii_lower(hay[i]) != needle[0]) continue;
    size_t k = 1;
    while (k < needle.size() && ascii_lower(hay[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

// Gopher's stop words, matched in any case: datatrove compares NLTK tokens as they are, so a sentence-initial "The"
// would not count there, which only penalises short documents.
bool is_stop_word(std::string_view w) {
  if (w.size() < 2 || w.size() > 4) return false;
  char buf[4];
  for (size_t i = 0; i < w.size(); ++i) buf[i] = ascii_lower(w[i]);
  std::string_view l(buf, w.size());
  return l == "the" || l == "be" || l == "to" || l == "of" || l == "and" || l == "that" || l == "have" || l == "with";
}

struct Line {
  std::string_view text;  // trimmed, never empty
  uint32_t words = 0;
  size_t max_word_len = 0;
  bool para_start = false;  // first line after a blank line or the start of the text
  bool bullet = false;      // first character is '•'
};

struct Doc {
  std::string_view text;
  size_t chars = 0, newlines = 0;
  size_t hashes = 0;    // '#'
  size_t ellipses = 0;  // "..." (non-overlapping, as str.count counts) and '…'
  std::vector<Line> lines;
  std::vector<std::string_view> words;
  std::vector<uint32_t> word_len;  // code points
  size_t word_chars = 0, alpha_words = 0, stop_words = 0;
};

// Everything the rules need in one decoding pass; words and lines are views into the text.
Doc scan(std::string_view text) {
  constexpr size_t npos = std::string_view::npos;
  Doc d;
  d.text = text;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const size_t n = text.size();

  Line line;
  size_t line_begin = npos, line_end = 0;
  bool after_blank = true;
  bool in_token = false, alpha = false;
  size_t core_begin = npos, core_end = 0, pos = 0, core_first = 0, core_last = 0;  // pos: code point within token
  size_t dots = 0;

  auto end_token = [&] {
    if (!in_token) return;
    in_token = false;
    if (core_begin == npos) return;  // punctuation only: not a word
    std::string_view w = text.substr(core_begin, core_end - core_begin);
    size_t len = core_last - core_first + 1;
    d.words.push_back(w);
    d.word_len.push_back(static_cast<uint32_t>(len));
    d.word_chars += len;
    d.alpha_words += alpha;
    d.stop_words += is_stop_word(w);
    ++line.words;
    line.max_word_len = std::max(line.max_word_len, len);
  };
  auto end_line = [&] {
    end_token();
    if (line_begin == npos) {
      after_blank = true;
      return;
    }
    line.text = text.substr(line_begin, line_end - line_begin);
    line.para_start = after_blank;
    d.lines.push_back(line);
    line = Line{};
    line_begin = npos;
    after_blank = false;
  };

  for (size_t i = 0; i < n;) {
    int32_t cp = p[i];
    size_t len = 1;
    if (cp >= 0x80) {
      utf8proc_int32_t c;
      utf8proc_ssize_t r = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(n - i), &c);
      // The input is meant to be valid; a stray byte still counts as one character rather than stopping the scan.
      cp = r > 0 ? c : -1;
      len = r > 0 ? static_cast<size_t>(r) : 1;
    }
    Cls cls = classify(cp);
    ++d.chars;
    if (cp == '.') {
      ++dots;
    } else {
      d.ellipses += dots / 3;
      dots = 0;
      d.hashes += cp == '#';
      d.ellipses += cp == 0x2026;
    }
    if (cls == Cls::newline) {
      ++d.newlines;
      end_line();
    } else if (cls == Cls::space) {
      end_token();
    } else {
      if (line_begin == npos) {
        line_begin = i;
        line.bullet = cp == 0x2022;
      }
      line_end = i + len;
      if (!in_token) {
        in_token = true;
        alpha = false;
        core_begin = npos;
        pos = 0;
      }
      if (cls != Cls::punct) {
        if (core_begin == npos) {
          core_begin = i;
          core_first = pos;
        }
        core_end = i + len;
        core_last = pos;
        alpha |= cls == Cls::letter;
      }
      ++pos;
    }
    i += len;
  }
  d.ellipses += dots / 3;
  end_line();
  return d;
}

// Open-addressing table that counts equal items, each known by its index and a 64-bit hash. Equality is decided
// by the caller on the indices, so n-grams are never materialised as strings and a hash collision cannot merge two
// different items.
class DupTable {
 public:
  struct Slot {
    uint64_t hash = 0;
    uint32_t first = 0;  // index of the first occurrence
    uint32_t count = 0;  // 0: empty
  };

  void reset(size_t items) {
    size_t cap = 16;
    while (cap < 2 * items) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }

  template <class Same>
  const Slot& add(uint64_t hash, size_t idx, Same&& same) {
    for (size_t s = mix(hash) & mask_;; s = (s + 1) & mask_) {
      Slot& e = slots_[s];
      if (e.count == 0) {
        e = Slot{hash, static_cast<uint32_t>(idx), 1};
        return e;
      }
      if (e.hash == hash && same(e.first)) {
        ++e.count;
        return e;
      }
    }
  }

 private:
  // splitmix64's finaliser, so that probe positions look random whatever the structure of the hashes (the n-gram
  // hashes are polynomial sums, not mixed).
  static uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

struct Dups {
  size_t items = 0, dups = 0, dup_chars = 0;
};

// Occurrences after the first and their characters, as datatrove's find_duplicates counts them.
Dups find_duplicates(const std::vector<std::string_view>& items, DupTable& table) {
  Dups r;
  r.items = items.size();
  table.reset(items.size());
  std::hash<std::string_view> hash;
  for (size_t i = 0; i < items.size(); ++i) {
    if (table.add(hash(items[i]), i, [&](size_t a) { return items[a] == items[i]; }).count > 1) {
      ++r.dups;
      r.dup_chars += count_chars(items[i]);
    }
  }
  return r;
}

// Word n-grams with O(1) hashes and lengths from prefix sums. An n-gram's characters are its words joined by single
// spaces, as datatrove's " ".join measures them.
class NGrams {
 public:
  explicit NGrams(const Doc& d) : words_(d.words), hash_(d.words.size() + 1), len_(d.words.size() + 1) {
    std::hash<std::string_view> h;
    for (size_t i = 0; i < words_.size(); ++i) {
      hash_[i + 1] = hash_[i] * kBase + h(words_[i]);
      len_[i + 1] = len_[i] + d.word_len[i];
    }
    pow_[0] = 1;
    for (size_t n = 1; n < pow_.size(); ++n) pow_[n] = pow_[n - 1] * kBase;
  }

  // The most frequent n-gram's count times its characters; 0 when no n-gram occurs twice. Gopher scores
  // repetition: an n-gram seen once is none, and counting it would fail short documents here, not at min_words.
  size_t top_chars(size_t n, DupTable& table) const {
    if (words_.size() < n) return 0;
    size_t m = words_.size() - n + 1, best = 1, best_first = 0;
    table.reset(m);
    for (size_t i = 0; i < m; ++i) {
      const DupTable::Slot& s = table.add(hash(i, n), i, [&](size_t a) { return same(a, i, n); });
      if (s.count > best) {
        best = s.count;
        best_first = s.first;
      }
    }
    return best > 1 ? best * chars(best_first, n) : 0;
  }

  // Characters of the words covered by n-grams that occurred earlier in the text, each word counted once however
  // many such n-grams overlap it (the Gopher paper's wording; datatrove's loop skips n words after a hit instead).
  size_t dup_chars(size_t n, DupTable& table) const {
    if (words_.size() < n) return 0;
    size_t m = words_.size() - n + 1, covered_end = 0, total = 0;
    table.reset(m);
    for (size_t i = 0; i < m; ++i) {
      if (table.add(hash(i, n), i, [&](size_t a) { return same(a, i, n); }).count == 1) continue;
      size_t from = std::max(i, covered_end);
      bool joins_previous = from == covered_end && covered_end > 0;  // the space before `from` is covered too
      total += len_[i + n] - len_[from] + (i + n - from - 1) + joins_previous;
      covered_end = i + n;
    }
    return total;
  }

 private:
  static constexpr uint64_t kBase = 0x100000001b3ULL;

  uint64_t hash(size_t i, size_t n) const { return hash_[i + n] - hash_[i] * pow_[n]; }
  size_t chars(size_t i, size_t n) const { return len_[i + n] - len_[i] + n - 1; }
  bool same(size_t a, size_t b, size_t n) const {
    return std::equal(words_.begin() + a, words_.begin() + a + n, words_.begin() + b);
  }

  const std::vector<std::string_view>& words_;
  std::vector<uint64_t> hash_;
  std::vector<size_t> len_;
  std::array<uint64_t, 11> pow_;  // kBase^n for the n-gram sizes used
};

Dups line_duplicates(const Doc& d, DupTable& table) {
  std::vector<std::string_view> lines;
  lines.reserve(d.lines.size());
  for (const Line& l : d.lines) lines.push_back(l.text);
  return find_duplicates(lines, table);
}

Rule gopher_repetition(const Doc& d, const QualityConfig& cfg, const Switches& sw, const Dups& lines, DupTable& table) {
  if (sw.on(kDupParaFrac) || sw.on(kDupParaCharFrac)) {
    std::vector<std::string_view> paras;
    for (size_t i = 0; i < d.lines.size();) {
      size_t j = i + 1;
      while (j < d.lines.size() && !d.lines[j].para_start) ++j;
      const char* begin = d.lines[i].text.data();
      const std::string_view last = d.lines[j - 1].text;
      paras.emplace_back(begin, static_cast<size_t>(last.data() + last.size() - begin));
      i = j;
    }
    Dups p = find_duplicates(paras, table);
    if (sw.on(kDupParaFrac) && frac(p.dups, p.items) > cfg.gopher_max_dup_para_frac) return kDupParaFrac;
    if (sw.on(kDupParaCharFrac) && frac(p.dup_chars, d.chars) > cfg.gopher_max_dup_para_char_frac)
      return kDupParaCharFrac;
  }
  if (sw.on(kDupLineFrac) && frac(lines.dups, lines.items) > cfg.gopher_max_dup_line_frac) return kDupLineFrac;
  if (sw.on(kDupLineCharFrac) && frac(lines.dup_chars, d.chars) > cfg.gopher_max_dup_line_char_frac)
    return kDupLineCharFrac;

  bool any_ngram = false;
  for (int r = kTop2Gram; r <= kDup10Gram; ++r) any_ngram |= sw.on(static_cast<Rule>(r));
  if (!any_ngram) return kNumRules;
  // Each pass below costs a hash-table sweep over the words, so passes that cannot fire are skipped: when no n-gram
  // repeats, no longer one does, and the words covered by repeated n-grams include those covered by longer ones, so
  // the duplicate fraction can only shrink as n grows.
  NGrams grams(d);
  for (size_t k = 0; k < cfg.gopher_max_top_ngram_char_frac.size(); ++k) {
    Rule r = static_cast<Rule>(kTop2Gram + k);
    if (!sw.on(r)) continue;
    size_t top = grams.top_chars(k + 2, table);
    if (top == 0) return kNumRules;
    if (frac(top, d.chars) > cfg.gopher_max_top_ngram_char_frac[k]) return r;
  }
  const auto& dup_max = cfg.gopher_max_dup_ngram_char_frac;
  for (size_t k = 0; k < dup_max.size(); ++k) {
    Rule r = static_cast<Rule>(kDup5Gram + k);
    if (!sw.on(r)) continue;
    double f = frac(grams.dup_chars(k + 5, table), d.chars);
    if (f > dup_max[k]) return r;
    bool longer_can_fire = false;
    for (size_t m = k + 1; m < dup_max.size(); ++m)
      longer_can_fire |= sw.on(static_cast<Rule>(kDup5Gram + m)) && f > dup_max[m];
    if (!longer_can_fire) return kNumRules;
  }
  return kNumRules;
}

Rule gopher_quality(const Doc& d, const QualityConfig& cfg, const Switches& sw) {
  const size_t words = d.words.size();
  if (sw.on(kMinWords) && words < cfg.gopher_min_words) return kMinWords;
  if (sw.on(kMaxWords) && words > cfg.gopher_max_words) return kMaxWords;
  const double avg = frac(d.word_chars, words);
  if (sw.on(kMinAvgWordLen) && avg < cfg.gopher_min_avg_word_len) return kMinAvgWordLen;
  if (sw.on(kMaxAvgWordLen) && avg > cfg.gopher_max_avg_word_len) return kMaxAvgWordLen;
  if (sw.on(kHashWordRatio) && frac(d.hashes, words) > cfg.gopher_max_symbol_word_ratio) return kHashWordRatio;
  if (sw.on(kEllipsisWordRatio) && frac(d.ellipses, words) > cfg.gopher_max_symbol_word_ratio)
    return kEllipsisWordRatio;
  if (sw.on(kBulletLinesRatio) || sw.on(kEllipsisLinesRatio)) {
    size_t bullets = 0, ellipsis_ends = 0;
    for (const Line& l : d.lines) {
      bullets += l.bullet;
      ellipsis_ends += l.text.ends_with("...") || l.text.ends_with("\u2026");
    }
    if (sw.on(kBulletLinesRatio) && frac(bullets, d.lines.size()) > cfg.gopher_max_bullet_lines_ratio)
      return kBulletLinesRatio;
    if (sw.on(kEllipsisLinesRatio) && frac(ellipsis_ends, d.lines.size()) > cfg.gopher_max_ellipsis_lines_ratio)
      return kEllipsisLinesRatio;
  }
  if (sw.on(kAlphaWordsRatio) && frac(d.alpha_words, words) < cfg.gopher_min_alpha_words_ratio) return kAlphaWordsRatio;
  if (sw.on(kStopWords) && d.stop_words < cfg.gopher_min_stop_words) return kStopWords;
  return kNumRules;
}

// Datatrove's terminal marks plus their typographic forms: NFC text keeps curly quotes as they were typed.
bool ends_terminal(std::string_view s) {
  if (s.empty()) return false;
  char c = s.back();
  return c == '.' || c == '?' || c == '!' || c == '"' || c == '\'' || s.ends_with("\u201D") || s.ends_with("\u2019");
}

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// The line without trailing Wikipedia marks ([12], [edit], [citation needed]), which C4 removes before looking at
// the last character.
std::string_view drop_citations(std::string_view s) {
  for (;;) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.empty() || s.back() != ']') return s;
    size_t open = s.rfind('[');
    if (open == std::string_view::npos) return s;
    std::string_view inner = s.substr(open + 1, s.size() - open - 2);
    if (inner != "edit" && inner != "citation needed" && !std::all_of(inner.begin(), inner.end(), is_ascii_digit))
      return s;
    s = s.substr(0, open);
  }
}

// Sentences in a line: a run of . ? ! (then any closing quotes or brackets) followed by whitespace or the end of the
// line ends one, and text after the last such end is one more. Without NLTK's Punkt, abbreviations such as "Dr. X"
// count as a boundary and decimals such as "3.5" do not.
size_t count_sentences(std::string_view s) {
  auto is_closer = [](std::string_view rest) {
    char c = rest[0];
    if (c == '"' || c == '\'' || c == ')' || c == ']') return size_t{1};
    for (std::string_view q : {"\u201D", "\u2019", "\u00BB"})
      if (rest.starts_with(q)) return q.size();
    return size_t{0};
  };
  size_t sentences = 0;
  bool content = false;
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '.' || c == '?' || c == '!') {
      size_t j = i;
      while (j < s.size() && (s[j] == '.' || s[j] == '?' || s[j] == '!')) ++j;
      while (j < s.size()) {
        size_t k = is_closer(s.substr(j));
        if (k == 0) break;
        j += k;
      }
      if ((j == s.size() || s[j] == ' ' || s[j] == '\t') && content) {
        ++sentences;
        content = false;
      }
      i = j;
      continue;
    }
    if (c != ' ' && c != '\t') content = true;
    ++i;
  }
  return sentences + content;
}

// C4 as a document filter. "lorem ipsum" and '{' are looked for in the whole text, as the C4 paper states, not
// only in the lines TFDS would keep: the text is not rewritten here, so code lines that TFDS would cut stay in the
// output and the page has to go. Lines are then judged in TFDS's order until enough sentences are found; a line's
// words are this module's words, so a dash or a bullet does not count towards the minimum.
Rule c4(const Doc& d, const QualityConfig& cfg, const Switches& sw) {
  if (sw.on(kLoremIpsum) && contains_ci(d.text, "lorem ipsum")) return kLoremIpsum;
  if (sw.on(kCurlyBracket) && d.text.find('{') != std::string_view::npos) return kCurlyBracket;
  if (!sw.on(kMinSentences)) return kNumRules;
  const bool long_word = sw.on(kLineLongWord), terminal = sw.on(kLineTerminalPunct), min_words = sw.on(kLineMinWords),
             javascript = sw.on(kLineJavascript), policy = sw.on(kLinePolicy);
  size_t sentences = 0;
  for (size_t i = 0; i < d.lines.size() && sentences < cfg.c4_min_sentences; ++i) {
    const Line& l = d.lines[i];
    if (long_word && l.max_word_len > cfg.c4_max_word_len) continue;
    std::string_view body = drop_citations(l.text);
    if (terminal && (!ends_terminal(body) || body.ends_with("..."))) continue;
    if (min_words && l.words < cfg.c4_min_words_per_line) continue;
    if (javascript && contains_ci(l.text, "javascript")) continue;
    if (policy && std::any_of(std::begin(kPolicyPhrases), std::end(kPolicyPhrases),
                              [&](std::string_view p) { return contains_ci(l.text, p); }))
      continue;
    sentences += count_sentences(body);
  }
  return sentences < cfg.c4_min_sentences ? kMinSentences : kNumRules;
}

Rule fineweb(const Doc& d, const QualityConfig& cfg, const Switches& sw, const Dups& dup_lines) {
  const size_t lines = d.lines.size();
  if (sw.on(kLinePunctRatio)) {
    size_t punct = 0;
    for (const Line& l : d.lines) punct += ends_terminal(l.text);
    if (frac(punct, lines) <= cfg.fineweb_line_punct_ratio) return kLinePunctRatio;
  }
  if (sw.on(kShortLineRatio)) {
    size_t short_lines = 0;
    for (const Line& l : d.lines) short_lines += count_chars(l.text) <= cfg.fineweb_short_line_length;
    if (frac(short_lines, lines) >= cfg.fineweb_short_line_ratio) return kShortLineRatio;
  }
  if (sw.on(kCharDupRatio) && frac(dup_lines.dup_chars, d.chars - d.newlines) >= cfg.fineweb_char_dup_ratio)
    return kCharDupRatio;
  // Line breaks between non-blank lines, which is datatrove's count of '\n' for text without empty lines.
  if (sw.on(kListRatio) && frac(lines == 0 ? 0 : lines - 1, d.words.size()) > cfg.fineweb_list_ratio) return kListRatio;
  return kNumRules;
}

}  // namespace

QualityVerdict check_quality(std::string_view text, const QualityConfig& cfg) {
  if (text.size() > UINT32_MAX)  // word and line indices are 32-bit to keep the duplicate tables small
    throw RuntimeError("a document of " + std::to_string(text.size()) +
                       " bytes is over the 4 GiB the quality filters take");
  const Switches sw(cfg);
  const Doc d = scan(text);
  DupTable table;
  Dups lines;
  if (sw.on(kDupLineFrac) || sw.on(kDupLineCharFrac) || sw.on(kCharDupRatio)) lines = line_duplicates(d, table);
  if (Rule r = gopher_repetition(d, cfg, sw, lines, table); r != kNumRules) return fail(r);
  if (Rule r = gopher_quality(d, cfg, sw); r != kNumRules) return fail(r);
  if (Rule r = c4(d, cfg, sw); r != kNumRules) return fail(r);
  if (Rule r = fineweb(d, cfg, sw, lines); r != kNumRules) return fail(r);
  return QualityVerdict{};
}

const std::vector<std::string>& quality_rule_names() {
  static const std::vector<std::string> names(kNames.begin(), kNames.begin() + kNumRules);
  return names;
}

const std::vector<std::string>& quality_switch_names() {
  static const std::vector<std::string> names(kNames.begin(), kNames.end());
  return names;
}

void validate_quality_config(const QualityConfig& cfg) {
  const std::vector<std::string>& known = quality_switch_names();
  for (const std::string& r : cfg.disabled_rules) {
    if (std::find(known.begin(), known.end(), r) != known.end()) continue;
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    throw UsageError("unknown quality rule '" + r + "' (known: " + list + ")");
  }
  std::vector<std::pair<std::string, double>> ratios = {
      {"gopher_max_dup_para_frac", cfg.gopher_max_dup_para_frac},
      {"gopher_max_dup_para_char_frac", cfg.gopher_max_dup_para_char_frac},
      {"gopher_max_dup_line_frac", cfg.gopher_max_dup_line_frac},
      {"gopher_max_dup_line_char_frac", cfg.gopher_max_dup_line_char_frac},
      {"gopher_min_avg_word_len", cfg.gopher_min_avg_word_len},
      {"gopher_max_avg_word_len", cfg.gopher_max_avg_word_len},
      {"gopher_max_symbol_word_ratio", cfg.gopher_max_symbol_word_ratio},
      {"gopher_max_bullet_lines_ratio", cfg.gopher_max_bullet_lines_ratio},
      {"gopher_max_ellipsis_lines_ratio", cfg.gopher_max_ellipsis_lines_ratio},
      {"gopher_min_alpha_words_ratio", cfg.gopher_min_alpha_words_ratio},
      {"fineweb_line_punct_ratio", cfg.fineweb_line_punct_ratio},
      {"fineweb_short_line_ratio", cfg.fineweb_short_line_ratio},
      {"fineweb_char_dup_ratio", cfg.fineweb_char_dup_ratio},
      {"fineweb_list_ratio", cfg.fineweb_list_ratio}};
  // Per-size entries are named as curate-dedup's --quality-param names them.
  for (size_t k = 0; k < cfg.gopher_max_top_ngram_char_frac.size(); ++k)
    ratios.emplace_back("gopher_max_top_" + std::to_string(k + 2) + "gram_char_frac",
                        cfg.gopher_max_top_ngram_char_frac[k]);
  for (size_t k = 0; k < cfg.gopher_max_dup_ngram_char_frac.size(); ++k)
    ratios.emplace_back("gopher_max_dup_" + std::to_string(k + 5) + "gram_char_frac",
                        cfg.gopher_max_dup_ngram_char_frac[k]);
  for (const auto& [name, v] : ratios)
    if (!(v >= 0))  // also catches NaN
      throw UsageError(name + " must be a number >= 0, not " + std::to_string(v));
  if (cfg.gopher_min_words > cfg.gopher_max_words)
    throw UsageError("gopher_min_words (" + std::to_string(cfg.gopher_min_words) + ") is above gopher_max_words (" +
                     std::to_string(cfg.gopher_max_words) + ")");
  if (cfg.gopher_min_avg_word_len > cfg.gopher_max_avg_word_len)
    throw UsageError("gopher_min_avg_word_len (" + std::to_string(cfg.gopher_min_avg_word_len) +
                     ") is above gopher_max_avg_word_len (" + std::to_string(cfg.gopher_max_avg_word_len) + ")");
}

}  // namespace bellows::text
