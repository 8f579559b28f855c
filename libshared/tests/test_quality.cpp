#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.hpp"
#include "text/quality.hpp"

using namespace bellows;
using namespace bellows::text;

namespace {

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// A clean document: a title and eight paragraphs of ordinary prose, about 330 words.
std::vector<std::string> clean_paragraphs() {
  return {
      "Keeping Bees in a Small Garden",
      "Many people assume that beekeeping needs a farm or a large plot of land, but a small garden is often enough "
      "for a single hive. The bees will fly several kilometres to find food, so the size of your own lawn matters "
      "much less than the flowers growing in the neighbourhood.",
      "Before buying any equipment, talk to your neighbours and check the local rules. Some councils ask beekeepers "
      "to register their hives, and a friendly conversation early on can prevent complaints later in the summer.",
      "Choose a sheltered spot for the hive where it gets morning sun and some shade in the afternoon. Facing the "
      "entrance towards a hedge or fence forces the bees to fly upwards when they leave, which keeps them well above "
      "the heads of people walking past.",
      "A beginner needs a hive, a frame of foundation wax for each box, a smoker, a hive tool and a good suit with "
      "gloves. Second-hand equipment can be cheap, but it should be cleaned carefully because old wood may carry "
      "diseases from a previous colony.",
      "Most new beekeepers start with a small colony called a nucleus, which contains a laying queen, workers and "
      "several frames of brood. It is usually collected in late spring, when the weather is warm and the first "
      "flowers provide plenty of nectar.",
      "During the first season, resist the temptation to open the hive every day. An inspection every week or two is "
      "enough to check that the queen is laying, that the colony has room to grow and that there are no signs of "
      "disease.",
      "Do not expect much honey in the first year. A new colony spends most of its energy building comb and raising "
      "young bees, and any surplus should be left for the winter so that the bees can survive until the following "
      "spring.",
      "Joining a local beekeeping association is the best way to learn. Experienced members are usually happy to "
      "answer questions, lend equipment and even help with a difficult inspection when something seems wrong.",
  };
}

std::string clean_doc() { return join(clean_paragraphs(), "\n\n"); }

// Five one-sentence lines, 55 words: enough for C4 and nothing more.
std::vector<std::string> five_sentences() {
  return {
      "The hive sits at the far end of our narrow garden.",
      "Every morning the bees leave in a steady stream towards the park.",
      "By midday they return heavy with pollen from the lime trees.",
      "In the evening the entrance grows quiet as the foragers settle.",
      "We open the roof only on warm and windless afternoons.",
  };
}

// Distinct made-up words from consonant-vowel syllables; without h, t or w none can be a stop word.
std::string made_up(size_t i, size_t syllables = 3) {
  static constexpr std::string_view kConsonants = "bdfgklmnprsvz", kVowels = "aeiou";
  std::string w;
  for (size_t s = 0; s < syllables; ++s) {
    w += kConsonants[i % kConsonants.size()];
    i /= kConsonants.size();
    w += kVowels[i % kVowels.size()];
    i /= kVowels.size();
  }
  return w;
}

// `count` made-up words from index `first`, `per_line` to a line, each line ending with `line_end`.
std::string made_up_text(size_t first, size_t count, size_t per_line, const std::string& line_end = ".",
                         size_t syllables = 3) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    out += made_up(first + i, syllables);
    bool eol = (i + 1) % per_line == 0 || i + 1 == count;
    out += eol ? line_end + (i + 1 == count ? "" : "\n") : " ";
  }
  return out;
}

// Made-up text in which `phrases` phrases of `n` words occur `times` times each, padded with words that occur once
// until weight x (phrase characters) / (all characters) is just under `target`. With weight = times this is the
// top-n-gram measure of a single phrase; with weight = 1 the duplicated-n-gram measure (repeats after the first).
std::string woven(size_t n, size_t phrases, size_t times, size_t weight, double target) {
  std::vector<std::string> phrase(phrases), tokens;
  size_t counted = 0, next = 100000;
  for (size_t p = 0; p < phrases; ++p) {
    for (size_t k = 0; k < n; ++k) phrase[p] += (k ? " " : "") + made_up(1000 + p * n + k);
    counted += weight * phrase[p].size();
  }
  for (size_t t = 0; t < times; ++t)
    for (size_t p = 0; p < phrases; ++p) {
      tokens.push_back(made_up(next++));  // keeps repeats apart, so no n-gram spans two of them
      tokens.push_back(phrase[p]);
    }
  size_t total = tokens.size() - 1;
  for (const std::string& t : tokens) total += t.size();
  EXPECT_GT(static_cast<double>(counted), target * static_cast<double>(total)) << "padding cannot lower it enough";
  while (static_cast<double>(counted) > target * static_cast<double>(total)) {
    tokens.push_back(made_up(next++));
    total += tokens.back().size() + 1;
  }
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) out += (i ? (i % 8 == 0 ? "\n" : " ") : "") + tokens[i];
  return out;
}

// A config in which only the named switches are on.
QualityConfig only(std::initializer_list<std::string_view> on) {
  QualityConfig cfg;
  for (const std::string& n : quality_switch_names())
    if (std::find(on.begin(), on.end(), n) == on.end()) cfg.disabled_rules.insert(n);
  return cfg;
}

std::string family_of(const std::string& rule) { return rule.substr(0, rule.find(':')); }

struct Case {
  std::string text;
  QualityConfig cfg;
  bool only_rule = false;  // the document passes everything once this rule is off
};

// A document failing each rule first, under the default configuration.
std::map<std::string, Case> failing_cases() {
  std::map<std::string, Case> c;
  const std::vector<std::string> clean = clean_paragraphs();

  {  // 6 copies of a short paragraph among 9: 5 of 15 paragraphs repeat, but they are few characters
    std::vector<std::string> p;
    for (size_t i = 0; i < clean.size(); ++i) {
      p.push_back(clean[i]);
      if (i >= 1 && i <= 6) p.push_back("Thanks for reading.");
    }
    c["gopher_repetition:dup_para_frac"] = {join(p, "\n\n"), {}};
  }
  {  // two long paragraphs again: 2 of 11 paragraphs, but a quarter of the characters
    std::vector<std::string> p = clean;
    p.push_back(clean[1]);
    p.push_back(clean[3]);
    c["gopher_repetition:dup_para_char_frac"] = {join(p, "\n\n"), {}};
  }
  {  // a recipe paragraph that keeps repeating one short line; no paragraph repeats
    std::vector<std::string> p = clean;
    std::string recipe;
    for (const char* step : {"flour", "milk", "eggs", "butter", "sugar", "salt", "honey"})
      recipe += std::string("Add the ") + step + " slowly.\nStir well.\nStir well.\n";
    p.push_back(recipe.substr(0, recipe.size() - 1));
    c["gopher_repetition:dup_line_frac"] = {join(p, "\n\n"), {}};
  }
  {  // one long line quoted in two different paragraphs: few lines repeat, but many characters
    std::vector<std::string> p(clean.begin(), clean.begin() + 5);
    const std::string quote = clean[5] + " " + clean[6] + " " + clean[7];
    p.push_back("From our first spring:\n" + quote);
    p.push_back("And again a year later:\n" + quote);
    c["gopher_repetition:dup_line_char_frac"] = {join(p, "\n\n"), {}};
  }
  c["gopher_repetition:top_2_gram"] = {woven(2, 1, 6, 6, 0.30), {}};
  c["gopher_repetition:top_3_gram"] = {woven(3, 1, 6, 6, 0.19), {}};
  c["gopher_repetition:top_4_gram"] = {woven(4, 1, 6, 6, 0.17), {}};
  c["gopher_repetition:dup_5_gram"] = {woven(5, 4, 2, 1, 0.20), {}};
  // Between the thresholds of n-1 and n: repeats of n-word phrases score the same for every size up to n.
  const double dup_thr[] = {0.15, 0.14, 0.13, 0.12, 0.11, 0.10};
  for (size_t n = 6; n <= 10; ++n)
    c["gopher_repetition:dup_" + std::to_string(n) + "_gram"] = {
        woven(n, 4, 2, 1, (dup_thr[n - 5] + dup_thr[n - 6]) / 2), {}};

  c["gopher_quality:min_words"] = {
      "The bees were calm this morning. They flew out early. The first flowers had opened. We watched them from the "
      "kitchen window. It was a good start to the season.",
      {},
      true};
  c["gopher_quality:max_words"] = {made_up_text(0, 100001, 100001), {}};
  c["gopher_quality:min_avg_word_len"] = {
      "I go to the pub at six. We sit by the fire and eat a pie. My dog is old and so am I. He can not run as he "
      "did, but he is a joy to me. Do you have a pet? If so, go for a walk with it now. It is fun.",
      {},
      true};
  c["gopher_quality:max_avg_word_len"] = {made_up_text(0, 60, 12, ".", 6), {}};
  {
    std::string tags;
    for (size_t i = 0; i < 50; ++i) tags += (i ? " #" : "#") + made_up(i);
    c["gopher_quality:hash_word_ratio"] = {clean_doc() + "\n\n" + tags, {}, true};
  }
  {
    std::string trail;
    for (size_t i = 0; i < 60; ++i) trail += made_up(i) + (i + 1 < 60 ? "\u2026 " : ".");
    c["gopher_quality:ellipsis_word_ratio"] = {clean_doc() + "\n\n" + trail, {}, true};
  }
  c["gopher_quality:bullet_lines_ratio"] = {
      "\u2022 Keep the hive entrance clear of grass and weeds.\n"
      "\u2022 Check the colony every week during the spring.\n"
      "\u2022 Wear a veil whenever you open the hive.\n"
      "\u2022 Light the smoker before you lift the roof.\n"
      "\u2022 Move slowly and calmly around the frames.\n"
      "\u2022 Look for eggs to confirm that the queen is laying.\n"
      "\u2022 Add a second box when the bees fill the first.\n"
      "\u2022 Leave enough honey for the colony to survive winter.\n"
      "\u2022 Treat for mites in late summer after the harvest.\n"
      "\u2022 Write down what you see after each inspection.",
      {},
      true};
  {
    std::vector<std::string> p = clean;
    for (size_t i = 1; i <= 4; ++i) p[i] = p[i].substr(0, p[i].size() - 1) + "...";
    c["gopher_quality:ellipsis_lines_ratio"] = {join(p, "\n\n"), {}, true};
  }
  {
    std::string numbers;
    for (int i = 1000; i < 1100; ++i) numbers += std::to_string(i) + (i < 1099 ? " " : ".");
    c["gopher_quality:alpha_words_ratio"] = {clean_doc() + "\n\n" + numbers, {}, true};
  }
  c["gopher_quality:stop_words"] = {made_up_text(0, 60, 12), {}, true};

  c["c4:lorem_ipsum"] = {clean_doc() + "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", {}, true};
  c["c4:curly_bracket"] = {clean_doc() + "\n\nSet the option to {enabled} in the file.", {}, true};
  c["c4:min_sentences"] = {
      "The hive sits at the far end of our narrow garden, where the hedge keeps the wind away. Every morning the bees "
      "leave in a steady stream towards the park and the old churchyard. By midday they return heavy with pollen from "
      "the lime trees along the river. In the evening the entrance grows quiet as the foragers settle for the night.",
      {},
      true};

  const std::string story = join(five_sentences(), " ");
  c["fineweb:line_punct_ratio"] = {story +
                                       "\nLocal beekeepers report a record harvest this year"
                                       "\nHow to build a simple hive stand from old pallets"
                                       "\nTen plants that bees love in early spring gardens"
                                       "\nWhy swarms happen and how you can prevent them"
                                       "\nA short history of the wooden frame hive design"
                                       "\nChoosing a smoker that stays lit on windy days"
                                       "\nWhat the colour of pollen tells you about forage"
                                       "\nSimple recipes that use honey instead of sugar"
                                       "\nMeet the volunteers who look after the town apiary",
                                   {},
                                   true};
  c["fineweb:short_line_ratio"] = {
      story + "\nBees.\nHoney jars.\nWax candles!\nPollen?\nSmoke.\nFrames.\nGloves.\nVeils.", {}, true};
  c["fineweb:char_dup_ratio"] = {clean_doc() + "\n\n" + clean[0], {}, true};
  {  // a list of alternating one-word lines and three-word lines of more than 30 characters
    std::string list = "Buy fresh food. Cook it well. Eat with friends. Share the rest. Enjoy the meal.";
    for (size_t i = 0; i < 20; ++i)
      list += "\n" + made_up(i) + "\n" + made_up(100 + 3 * i, 5) + " " + made_up(101 + 3 * i, 5) + " " +
              made_up(102 + 3 * i, 5) + ".";
    c["fineweb:list_ratio"] = {list, {}, true};
  }
  return c;
}

const std::map<std::string, Case>& cases() {
  static const std::map<std::string, Case> c = failing_cases();
  return c;
}

class QualityRule : public ::testing::TestWithParam<std::string> {};

TEST_P(QualityRule, FailsFirstAndCanBeSwitchedOff) {
  const std::string& rule = GetParam();
  auto it = cases().find(rule);
  ASSERT_NE(it, cases().end()) << "no failing document for " << rule;
  const Case& c = it->second;

  QualityVerdict v = check_quality(c.text, c.cfg);
  EXPECT_FALSE(v.keep);
  EXPECT_EQ(v.rule, rule);

  QualityConfig off = c.cfg;
  off.disabled_rules.insert(rule);
  QualityVerdict without = check_quality(c.text, off);
  EXPECT_NE(without.rule, rule);
  if (c.only_rule) {
    EXPECT_TRUE(without.keep) << "also fails " << without.rule;
  }

  QualityConfig no_family = c.cfg;
  const std::string family = family_of(rule);
  no_family.gopher_repetition = family != "gopher_repetition";
  no_family.gopher_quality = family != "gopher_quality";
  no_family.c4 = family != "c4";
  no_family.fineweb = family != "fineweb";
  EXPECT_NE(family_of(check_quality(c.text, no_family).rule), family);
}

INSTANTIATE_TEST_SUITE_P(AllRules, QualityRule, ::testing::ValuesIn(quality_rule_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), ':', '_');
                           return n;
                         });

TEST(QualityFilters, CleanDocumentPasses) {
  QualityVerdict v = check_quality(clean_doc(), QualityConfig{});
  EXPECT_TRUE(v.keep) << v.rule;
  EXPECT_TRUE(v.rule.empty());
  // Paragraphs separated by one line break instead of an empty line score the same.
  EXPECT_TRUE(check_quality(join(clean_paragraphs(), "\n"), QualityConfig{}).keep);
  // And so does Windows-style text, indentation or trailing blanks.
  std::string crlf = join(clean_paragraphs(), "  \r\n\r\n\t");
  EXPECT_TRUE(check_quality(crlf, QualityConfig{}).keep) << check_quality(crlf, QualityConfig{}).rule;
}

TEST(QualityFilters, EveryCaseNamesAKnownRule) {
  const std::vector<std::string>& names = quality_rule_names();
  for (const auto& [rule, c] : cases()) {
    EXPECT_NE(std::find(names.begin(), names.end(), rule), names.end()) << rule;
    EXPECT_NE(std::find(names.begin(), names.end(), check_quality(c.text, c.cfg).rule), names.end()) << rule;
  }
}

TEST(QualityFilters, RuleNames) {
  const std::vector<std::string>& names = quality_rule_names();
  EXPECT_EQ(names.size(), 30u);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  for (const std::string& n : names) {
    std::string f = family_of(n);
    EXPECT_TRUE(f == "gopher_repetition" || f == "gopher_quality" || f == "c4" || f == "fineweb") << n;
  }
  // Evaluation order is FineWeb's recipe.
  EXPECT_EQ(names.front(), "gopher_repetition:dup_para_frac");
  EXPECT_EQ(names.back(), "fineweb:list_ratio");

  const std::vector<std::string>& switches = quality_switch_names();
  EXPECT_EQ(switches.size(), names.size() + 5);
  EXPECT_TRUE(std::equal(names.begin(), names.end(), switches.begin()));
}

TEST(QualityFilters, EmptyAndBlankTextFailCleanly) {
  for (std::string_view text : {std::string_view(""), std::string_view(" \n\n \t\n  "), std::string_view("\n")}) {
    QualityVerdict v = check_quality(text, QualityConfig{});
    EXPECT_FALSE(v.keep);
    EXPECT_EQ(v.rule, "gopher_quality:min_words");
    // With the word count off, the next minimum catches it instead of a NaN comparison letting it through.
    QualityConfig cfg;
    cfg.disabled_rules.insert("gopher_quality:min_words");
    EXPECT_EQ(check_quality(text, cfg).rule, "gopher_quality:min_avg_word_len");
    cfg = QualityConfig{};
    cfg.gopher_quality = false;
    EXPECT_EQ(check_quality(text, cfg).rule, "c4:min_sentences");
    cfg.c4 = false;
    EXPECT_EQ(check_quality(text, cfg).rule, "fineweb:line_punct_ratio");
    cfg.fineweb = false;
    EXPECT_TRUE(check_quality(text, cfg).keep);  // nothing in it repeats
  }
}

TEST(QualityFilters, AllFamiliesOffKeepsEverything) {
  QualityConfig cfg;
  cfg.gopher_repetition = cfg.gopher_quality = cfg.c4 = cfg.fineweb = false;
  for (const auto& [rule, c] : cases()) EXPECT_TRUE(check_quality(c.text, cfg).keep) << rule;
}

TEST(QualityFilters, WordsSplitOnUnicodeSpaceAndLosePunctuation) {
  // Words: Hello world yes non don't qué 東京 a b c d 42. Pure punctuation (— … • !! ¿?) is not a word.
  const std::string text =
      "Hello, world! \u2014 \u2026 \u2022 (yes) \u00ABnon\u00BB don't \u00BFqu\u00E9? \u6771\u4EAC "
      "a\u00A0b c\u3000d !! 42";
  QualityConfig cfg = only({"gopher_quality:min_words"});
  cfg.gopher_min_words = 12;
  EXPECT_TRUE(check_quality(text, cfg).keep);
  cfg.gopher_min_words = 13;
  EXPECT_EQ(check_quality(text, cfg).rule, "gopher_quality:min_words");

  // A word counts characters, not bytes: "東京" is 2 long, "qué" 3.
  cfg = only({"gopher_quality:max_avg_word_len"});
  cfg.gopher_max_avg_word_len = 2;
  EXPECT_TRUE(check_quality("\u6771\u4EAC \u6771", cfg).keep);  // (2 + 1) / 2
  cfg.gopher_max_avg_word_len = 1.4;
  EXPECT_EQ(check_quality("\u6771\u4EAC \u6771", cfg).rule, "gopher_quality:max_avg_word_len");

  // Letters in any script count as alphabetic; digits and emoji do not.
  cfg = only({"gopher_quality:alpha_words_ratio"});
  cfg.gopher_min_alpha_words_ratio = 0.5;
  EXPECT_TRUE(check_quality("\u0391\u03B8\u03AE\u03BD\u03B1 \u6771\u4EAC 42 \U0001F41D", cfg).keep);  // 2 of 4
  EXPECT_EQ(check_quality("\u0391\u03B8\u03AE\u03BD\u03B1 42 \U0001F41D", cfg).rule,
            "gopher_quality:alpha_words_ratio");  // 1 of 3
}

TEST(QualityFilters, StopWordsMatchInAnyCase) {
  QualityConfig cfg = only({"gopher_quality:stop_words"});
  EXPECT_TRUE(check_quality("The cat AND the hat", cfg).keep);
  EXPECT_EQ(check_quality("The cat sat there", cfg).rule, "gopher_quality:stop_words");
  EXPECT_EQ(check_quality("Theory andante", cfg).rule, "gopher_quality:stop_words");
}

TEST(QualityFilters, EmojiAreWordsWithoutLetters) {
  std::string emoji;
  for (char32_t cp = 0x1F400; cp < 0x1F400 + 100; ++cp) {
    char buf[5] = {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
                   static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F)), 0};
    emoji += std::string(emoji.empty() ? "" : " ") + buf;
  }
  EXPECT_EQ(check_quality(clean_doc() + "\n\n" + emoji, QualityConfig{}).rule, "gopher_quality:alpha_words_ratio");
  // Inside a word an emoji is part of it and the word still has letters.
  EXPECT_TRUE(check_quality(clean_doc() + "\n\nHoney\U0001F36F is sweet.", QualityConfig{}).keep);
}

TEST(QualityFilters, TextWithoutSpacesIsOneWordPerLine) {
  const std::string cjk =
      "\u4E1C\u4EAC\u662F\u65E5\u672C\u7684\u9996\u90FD\u3002\n"
      "\u8702\u871C\u5F88\u751C\u3002\n"
      "\u6211\u4EEC\u5728\u82B1\u56ED\u91CC\u517B\u8702\u3002";
  EXPECT_EQ(check_quality(cjk, QualityConfig{}).rule, "gopher_quality:min_words");
  QualityConfig cfg;
  cfg.gopher_quality = false;
  EXPECT_EQ(check_quality(cjk, cfg).rule, "c4:min_sentences");  // '。' is not C4's terminal punctuation
}

TEST(QualityFilters, VeryLongLinesAndWords) {
  const std::string word(3'000'000, 'a');
  EXPECT_EQ(check_quality(word, QualityConfig{}).rule, "gopher_quality:min_words");
  QualityConfig cfg;
  cfg.gopher_quality = false;
  cfg.disabled_rules.insert("c4:line_terminal_punct");
  std::vector<std::string> lines = five_sentences();
  lines.back() += " " + word;
  EXPECT_EQ(check_quality(join(lines, "\n"), cfg).rule, "c4:min_sentences");  // the line with the long word is out
}

// C4's line rules drop lines, not documents: each one matters when the line it drops is needed for 5 sentences.
class C4LineRule : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(C4LineRule, DroppedLineCostsASentence) {
  const auto& [rule, last_line] = GetParam();
  QualityConfig cfg;
  cfg.gopher_repetition = cfg.gopher_quality = cfg.fineweb = false;
  std::vector<std::string> lines = five_sentences();
  ASSERT_TRUE(check_quality(join(lines, "\n"), cfg).keep);
  lines.back() = last_line;
  const std::string text = join(lines, "\n");
  EXPECT_EQ(check_quality(text, cfg).rule, "c4:min_sentences");
  cfg.disabled_rules.insert(rule);
  EXPECT_TRUE(check_quality(text, cfg).keep) << check_quality(text, cfg).rule;
}

INSTANTIATE_TEST_SUITE_P(
    LineRules, C4LineRule,
    ::testing::Values(
        std::pair<std::string, std::string>{"c4:line_long_word", "Here is a long word " + std::string(1001, 'x') + "."},
        std::pair<std::string, std::string>{"c4:line_terminal_punct", "We open the roof only on windless afternoons"},
        std::pair<std::string, std::string>{"c4:line_terminal_punct", "We open the roof only on windless days..."},
        std::pair<std::string, std::string>{"c4:line_min_words", "Quiet afternoons."},
        std::pair<std::string, std::string>{"c4:line_javascript", "Our hive camera needs JavaScript to show it."},
        std::pair<std::string, std::string>{"c4:line_policy", "Read our Privacy Policy before sending photos."}),
    [](const ::testing::TestParamInfo<std::pair<std::string, std::string>>& info) {
      return info.param.first.substr(3) + "_" + std::to_string(info.index);
    });

TEST(QualityFilters, C4KeepsLinesThatEndInPunctuationOrCitations) {
  QualityConfig cfg;
  cfg.gopher_repetition = cfg.gopher_quality = cfg.fineweb = false;
  std::vector<std::string> lines = five_sentences();
  lines[0] += "[1]";
  lines[1] += " [citation needed]";
  lines[2] += "[edit][12]";
  lines[3].back() = '?';
  lines[4] = "\u201CWe open the roof only on warm afternoons,\u201D she said.\u201D";
  EXPECT_TRUE(check_quality(join(lines, "\n"), cfg).keep) << check_quality(join(lines, "\n"), cfg).rule;
  std::string word(1000, 'y');  // exactly the limit is allowed
  lines[4] = "A word at the limit " + word + ".";
  EXPECT_TRUE(check_quality(join(lines, "\n"), cfg).keep);
}

TEST(QualityFilters, C4CountsSentencesAtTerminalMarksFollowedBySpace) {
  QualityConfig cfg = only({"c4:min_sentences"});
  EXPECT_TRUE(check_quality("Version 3.5 is out! Is it good? Yes. It is. Really.", cfg).keep);
  EXPECT_FALSE(check_quality("Version 3.5 is out! Is it good? Yes. It is.", cfg).keep);
  EXPECT_TRUE(check_quality("He said \"stop.\" Then he left. She asked \"why?\" Nobody knew. The end", cfg).keep);
  EXPECT_FALSE(check_quality("... ?! . Only one sentence here", cfg).keep);
  // Without Punkt, abbreviations end sentences: this one line counts as 5.
  EXPECT_TRUE(check_quality("Dr. Smith met Mr. Jones and Mrs. Brown at St. Paul's today.", cfg).keep);
}

TEST(QualityFilters, RepetitionIgnoresBlankLinesAndNeedsARepeat) {
  // Blank lines between paragraphs are not duplicate lines.
  std::vector<std::string> p = clean_paragraphs();
  EXPECT_TRUE(check_quality(join(p, "\n\n\n\n"), only({"gopher_repetition:dup_line_frac"})).keep);
  // A short text whose 2-grams all occur once has no top 2-gram to speak of.
  EXPECT_TRUE(check_quality("honey bees", only({"gopher_repetition:top_2_gram"})).keep);
  EXPECT_EQ(check_quality("honey bees honey bees", only({"gopher_repetition:top_2_gram"})).rule,
            "gopher_repetition:top_2_gram");
}

TEST(QualityFilters, ThresholdsComeFromTheConfig) {
  QualityConfig cfg;
  cfg.gopher_max_words = 100;
  EXPECT_EQ(check_quality(clean_doc(), cfg).rule, "gopher_quality:max_words");
  cfg = QualityConfig{};
  cfg.c4_min_sentences = 100;
  EXPECT_EQ(check_quality(clean_doc(), cfg).rule, "c4:min_sentences");
  cfg = QualityConfig{};
  cfg.fineweb_short_line_ratio = 0.1;  // the title is 1 short line of 9
  EXPECT_EQ(check_quality(clean_doc(), cfg).rule, "fineweb:short_line_ratio");
  cfg = QualityConfig{};
  cfg.gopher_max_dup_ngram_char_frac[5] = 0.0;
  EXPECT_TRUE(check_quality(clean_doc(), cfg).keep);  // no 10-gram repeats at all
}

TEST(QualityFilters, ValidateConfig) {
  EXPECT_NO_THROW(validate_quality_config(QualityConfig{}));
  QualityConfig cfg;
  for (const std::string& n : quality_switch_names()) cfg.disabled_rules.insert(n);
  EXPECT_NO_THROW(validate_quality_config(cfg));
  cfg.disabled_rules.insert("gopher:min_words");
  try {
    validate_quality_config(cfg);
    ADD_FAILURE() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'gopher:min_words'"), std::string::npos) << e.what();
  }
  cfg = QualityConfig{};
  cfg.gopher_min_words = 200;
  cfg.gopher_max_words = 100;
  EXPECT_THROW(validate_quality_config(cfg), UsageError);
  cfg = QualityConfig{};
  cfg.gopher_min_avg_word_len = 11;
  EXPECT_THROW(validate_quality_config(cfg), UsageError);
  cfg = QualityConfig{};
  cfg.gopher_max_dup_ngram_char_frac[2] = -0.1;
  try {
    validate_quality_config(cfg);
    ADD_FAILURE() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("gopher_max_dup_7gram_char_frac"), std::string::npos) << e.what();
  }
  cfg = QualityConfig{};
  cfg.fineweb_list_ratio = std::nan("");
  EXPECT_THROW(validate_quality_config(cfg), UsageError);
}

}  // namespace
