// Heuristic document quality filters: Gopher repetition and quality (Rae et al. 2021), C4 (Raffel et al. 2020) and
// FineWeb (Penedo et al. 2024), with the thresholds datatrove ships (shared/reference/curation.md §3).
//
// The filters only judge a document; they never rewrite it. Families run in the order of FineWeb's recipe (Gopher
// repetition, Gopher quality, C4, FineWeb) and the verdict names the first rule that fires, so per-rule counters
// match what a datatrove pipeline with one exclusion writer per step would report.
//
// Text model (the input is valid, NFC-normalised UTF-8 with \n line breaks):
//  - Characters are Unicode code points, as Python's len() counts them, so ratios mean the same for any script.
//  - A line is a \n-separated piece with surrounding whitespace trimmed. Blank lines are layout, not content: they
//    are left out of every per-line count and ratio, so a document scores the same whether its paragraphs are
//    separated by one \n or by an empty line. A paragraph is a run of non-blank lines.
//  - A word: split on Unicode whitespace, then strip leading and trailing punctuation (Unicode P* categories plus
//    the ASCII symbols of Python's string.punctuation, so ASCII behaves like datatrove's `w not in
//    string.punctuation`); a token with nothing left is not a word. Emoji and other non-ASCII symbols stay and make
//    a word without a letter. There is no NLTK: "don't" is one word, and text without spaces (Chinese, Japanese) is
//    one word per line, so these English-tuned rules reject it at gopher_quality:min_words or max_avg_word_len.
//  - A ratio with nothing to count over is 0, never NaN: empty or whitespace-only text fails gopher_quality:min_words
//    (or the next minimum rule when that one is disabled).
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bellows::text {

struct QualityConfig {
  bool gopher_quality = true, gopher_repetition = true, c4 = true, fineweb = true;
  // Switch names (quality_switch_names()) to turn off one by one: a disabled rule never fails a document, and a
  // disabled C4 line rule keeps the lines it would have dropped.
  std::set<std::string, std::less<>> disabled_rules;

  // Gopher repetition (Table A1); a document fails when a fraction is above its threshold. Character fractions
  // are over all characters of the document.
  double gopher_max_dup_para_frac = 0.3;
  double gopher_max_dup_para_char_frac = 0.2;
  double gopher_max_dup_line_frac = 0.3;
  double gopher_max_dup_line_char_frac = 0.2;
  std::array<double, 3> gopher_max_top_ngram_char_frac = {0.20, 0.18, 0.16};                    // n = 2, 3, 4
  std::array<double, 6> gopher_max_dup_ngram_char_frac = {0.15, 0.14, 0.13, 0.12, 0.11, 0.10};  // n = 5..10

  // Gopher quality
  size_t gopher_min_words = 50, gopher_max_words = 100000;
  double gopher_min_avg_word_len = 3, gopher_max_avg_word_len = 10;
  double gopher_max_symbol_word_ratio = 0.1;  // '#' per word, and "..." or "…" per word, each on its own
  double gopher_max_bullet_lines_ratio = 0.9;
  double gopher_max_ellipsis_lines_ratio = 0.3;
  double gopher_min_alpha_words_ratio = 0.8;
  size_t gopher_min_stop_words = 2;  // occurrences of the, be, to, of, and, that, have, with (any case)

  // C4, used as a document filter: a document fails when fewer than c4_min_sentences sentences remain after
  // leaving out the lines C4 would drop, or when it contains "lorem ipsum" or '{' anywhere. Without NLTK's Punkt a
  // sentence ends at a run of . ? ! (and any closing quotes or brackets) followed by a space or the end of the line,
  // so "3.5" does not end one and "Dr. Smith" does.
  size_t c4_min_sentences = 5;
  size_t c4_min_words_per_line = 3;
  size_t c4_max_word_len = 1000;  // a line with a longer word is dropped

  // FineWeb; the comparison is datatrove's for each.
  double fineweb_line_punct_ratio = 0.12;  // fails when the share of lines ending in . ' " ! ? (or ” ’) is <= this
  size_t fineweb_short_line_length = 30;   // a line of at most this many characters is short
  double fineweb_short_line_ratio = 0.67;  // fails when the share of short lines is >= this
  double fineweb_char_dup_ratio = 0.01;    // fails when duplicate-line characters / non-\n characters is >= this
  double fineweb_list_ratio = 0.3;         // fails when line breaks per word is > this
};

struct QualityVerdict {
  bool keep = true;
  std::string rule;  // first failing rule ("family:rule"); empty when kept
};

QualityVerdict check_quality(std::string_view text, const QualityConfig& cfg);

// Every rule name check_quality can return, in evaluation order (for report.json's per-rule counters, zero-filled).
const std::vector<std::string>& quality_rule_names();

// Every name disabled_rules accepts: the rule names plus C4's line rules, which drop lines rather than documents
// (c4:line_long_word, c4:line_terminal_punct, c4:line_min_words, c4:line_javascript, c4:line_policy).
// FineWeb's recipe runs C4 without the terminal-punctuation line rule.
const std::vector<std::string>& quality_switch_names();

// Throws UsageError for an unknown name in disabled_rules, a negative or NaN threshold, or a minimum above its
// maximum.
void validate_quality_config(const QualityConfig& cfg);

}  // namespace bellows::text
