#include "curate/quality_options.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>
#include <variant>

#include "core/error.hpp"

namespace bellows::curate {
namespace {

using Field = std::variant<double*, size_t*>;

std::map<std::string, Field> fields(text::QualityConfig& c) {
  std::map<std::string, Field> m = {
      {"gopher_max_dup_para_frac", &c.gopher_max_dup_para_frac},
      {"gopher_max_dup_para_char_frac", &c.gopher_max_dup_para_char_frac},
      {"gopher_max_dup_line_frac", &c.gopher_max_dup_line_frac},
      {"gopher_max_dup_line_char_frac", &c.gopher_max_dup_line_char_frac},
      {"gopher_min_words", &c.gopher_min_words},
      {"gopher_max_words", &c.gopher_max_words},
      {"gopher_min_avg_word_len", &c.gopher_min_avg_word_len},
      {"gopher_max_avg_word_len", &c.gopher_max_avg_word_len},
      {"gopher_max_symbol_word_ratio", &c.gopher_max_symbol_word_ratio},
      {"gopher_max_bullet_lines_ratio", &c.gopher_max_bullet_lines_ratio},
      {"gopher_max_ellipsis_lines_ratio", &c.gopher_max_ellipsis_lines_ratio},
      {"gopher_min_alpha_words_ratio", &c.gopher_min_alpha_words_ratio},
      {"gopher_min_stop_words", &c.gopher_min_stop_words},
      {"c4_min_sentences", &c.c4_min_sentences},
      {"c4_min_words_per_line", &c.c4_min_words_per_line},
      {"c4_max_word_len", &c.c4_max_word_len},
      {"fineweb_line_punct_ratio", &c.fineweb_line_punct_ratio},
      {"fineweb_short_line_length", &c.fineweb_short_line_length},
      {"fineweb_short_line_ratio", &c.fineweb_short_line_ratio},
      {"fineweb_char_dup_ratio", &c.fineweb_char_dup_ratio},
      {"fineweb_list_ratio", &c.fineweb_list_ratio},
  };
  for (size_t n = 2; n <= 4; ++n) m["gopher_max_top_" + std::to_string(n) + "gram_char_frac"] = &c.gopher_max_top_ngram_char_frac[n - 2];
  for (size_t n = 5; n <= 10; ++n) m["gopher_max_dup_" + std::to_string(n) + "gram_char_frac"] = &c.gopher_max_dup_ngram_char_frac[n - 5];
  return m;
}

std::string value_text(const Field& f) {
  std::ostringstream os;
  std::visit([&](auto* p) { os << *p; }, f);
  return os.str();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> quality_param_defaults() {
  text::QualityConfig c;
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, f] : fields(c)) out.emplace_back(name, value_text(f));
  return out;
}

text::QualityConfig quality_config(const std::string& disable_rules, const std::vector<std::string>& params) {
  text::QualityConfig c;
  std::stringstream ss(disable_rules);
  std::string item;
  const auto& switches = text::quality_switch_names();
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    if (item == "gopher_quality") c.gopher_quality = false;
    else if (item == "gopher_repetition") c.gopher_repetition = false;
    else if (item == "c4") c.c4 = false;
    else if (item == "fineweb") c.fineweb = false;
    else if (std::find(switches.begin(), switches.end(), item) != switches.end()) c.disabled_rules.insert(item);
    else
      throw UsageError("--disable-rules: unknown rule '" + item +
                       "' (families: gopher_quality, gopher_repetition, c4, fineweb; rules as in report.json)");
  }
  auto f = fields(c);
  for (const auto& p : params) {
    auto eq = p.find('=');
    std::string name = p.substr(0, eq);
    auto it = f.find(name);
    if (eq == std::string::npos || it == f.end())
      throw UsageError("--quality-param: expected NAME=VALUE with a known NAME, got '" + p + "' (see README)");
    std::string v = p.substr(eq + 1);
    try {
      size_t used = 0;
      if (auto d = std::get_if<double*>(&it->second)) {
        double x = std::stod(v, &used);
        if (x < 0) throw std::invalid_argument("negative");
        **d = x;
      } else {
        long long x = std::stoll(v, &used);
        if (x < 0) throw std::invalid_argument("negative");
        *std::get<size_t*>(it->second) = static_cast<size_t>(x);
      }
      if (used != v.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw UsageError("--quality-param: '" + name + "' needs a non-negative number, got '" + v + "'");
    }
  }
  text::validate_quality_config(c);
  return c;
}

}  // namespace bellows::curate
