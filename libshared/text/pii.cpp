#include "text/pii.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <pcre2.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace bellows::text {
namespace {

constexpr std::array<const char*, kNumPiiTypes> kNames = {"email",       "phone",  "ipv4", "ipv6",
                                                          "credit_card", "us_ssn", "iban"};
constexpr std::array<const char*, kNumPiiTypes> kPlaceholders = {
    "<EMAIL>", "<PHONE>", "<IP_ADDRESS>", "<IP_ADDRESS>", "<CREDIT_CARD>", "<US_SSN>", "<IBAN>"};

// Building blocks of the patterns, built on use rather than as globals: a redactor may be
// constructed during another file's static initialisation. Scripts written without spaces
// between words are left out of the "word character" classes, so that a number or address
// written straight after Chinese or Japanese text ("服务器8.8.8.8") still starts a token.
constexpr std::string_view kNoSpaceScripts =
    R"(\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar})";
std::string word_class() { return R"([^\W)" + std::string(kNoSpaceScripts) + "]"; }      // letter, digit, '_'
std::string alnum_class() { return R"([^\W_)" + std::string(kNoSpaceScripts) + "]"; }    // letter, digit
std::string letter_class() { return R"([^\W\d_)" + std::string(kNoSpaceScripts) + "]"; }  // letter
constexpr const char* kOctet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";  // no leading zeros

// Local part and domain of an address; group 1 is the domain. The TLD must be letters, which
// keeps "pkg@1.2.3" out. The local part must start a token (not right after a word character,
// or a word character and a dot), so a local part longer than the window searched never
// matches in part.
std::string email_pattern() {
  const std::string word = word_class();
  const std::string alnum = alnum_class();
  const std::string letter = letter_class();
  const std::string local = "(?:" + word + "|[%+\\-])+";
  const std::string label = alnum + "(?:(?:" + alnum + "|-){0,61}" + alnum + ")?";
  return "(?<!" + word + "|[%+\\-]|" + word + "\\.)" + local + "(?:\\." + local + ")*@((?:" + label +
         "\\.)+" + letter + "{2,63})(?!" + alnum + "|-|\\." + alnum + ")";
}

// Only layouts people actually write phone numbers in. Each alternative must be followed by
// something that ends the number; the layouts that start with a national trunk "0" also may not
// be followed by another group of digits, since lists of zero-padded numbers look just like them.
std::string phone_pattern() {
  const std::string word = word_class();
  const std::string end = "(?!" + word + "|[.\\-/:,][0-9])";
  const std::string strict_end = "(?!" + word + "|[ .\\-/:,]?[0-9])";
  return "(?<!" + word + "|[+.])(?<![0-9][ .\\-/,])(?:"
         // +CC and up to eight digit groups; an area code may be in parentheses and a trunk
         // prefix shown as "(0)": +44 (0)20 7946 0958, +1 (555) 123-4567, +12025550123.
         R"(\+[1-9][0-9]{0,2}(?:[ .\-/]?(?:\(0\) ?)?(?:\([0-9]{1,5}\)|[0-9]{1,5})){1,8}+)" +
         end +
         // North American: (555) 123-4567, 1-555-123-4567, 555.123.4567 (one separator kind).
         R"(|(?:1[ .\-])?\([2-9][0-9]{2}\) ?[0-9]{3}[ .\-][0-9]{4})" + end +
         R"(|(?:1[ .\-])?[2-9][0-9]{2}([.\-])[0-9]{3}\g{-1}[0-9]{4})" + end +
         // Trunk-prefix national forms, longest first: 020 7946 0958, 01 23 45 67 89, 030 1234567.
         R"(|0[1-9][0-9]{1,4} [0-9]{3,4} [0-9]{3,4})" + strict_end +
         R"(|0[1-9]([ .])[0-9]{2}(?:\g{-1}[0-9]{2}){3})" + strict_end +
         R"(|0[1-9][0-9]{1,4}[ /\-][0-9]{4,8})" + strict_end + ")";
}

// Not part of a longer dotted sequence on either side (1.2.3.4.5, v.1.2.3.4, 1.2.3.4.txt).
std::string ipv4_pattern() {
  const std::string word = word_class();
  return "(?<!" + word + "|" + word + "\\.)(?:" + kOctet + "\\.){3}" + kOctet + "(?!" + word + "|\\." + word + ")";
}

// Candidates only; inet_pton decides. The first group must be a 4-digit 2xxx/3xxx because only
// global unicast (2000::/3) addresses are redacted, which also keeps times (12:30:45), MAC
// addresses and C++ scopes (std::max) out without further checks.
std::string ipv6_pattern() {
  const std::string word = word_class();
  return "(?<!" + word + "|:)[23][0-9A-Fa-f]{3}(?::[0-9A-Fa-f]{0,4}){2,7}+(?!" + word + "|:|\\.[0-9])";
}

// 13-19 digits in one run, 4-4-4-4 with an optional fifth group of 3 (19-digit cards) or Amex
// 4-6-5, with one kind of separator, and not inside a longer run of digit groups. Luhn and the
// issuer prefix are checked afterwards.
std::string card_pattern() {
  const std::string word = word_class();
  return "(?<!" + word + "|[.,+\\-/])(?<![0-9][ \\-])(?:[0-9]{13,19}" +
         R"(|[0-9]{4}([ \-])[0-9]{4}\g{-1}[0-9]{4}\g{-1}[0-9]{4}(?:\g{-1}[0-9]{3})?)" +
         R"(|[0-9]{4}([ \-])[0-9]{6}\g{-1}[0-9]{5}))" + "(?!" + word + "|[.,\\-/][0-9]|[ \\-][0-9]{4})";
}

// AAA-GG-SSSS with the never-issued areas (000, 666, 900-999), group 00 and serial 0000 excluded.
std::string ssn_pattern() {
  const std::string word = word_class();
  return "(?<!" + word + "|[.,+\\-/])(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?!" + word +
         "|[.,\\-/][0-9])";
}

// IBAN length per country (SWIFT IBAN registry).
struct IbanCountry {
  const char* code;
  int length;
};
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
    {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HN", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28},
    {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22},
    {"MK", 19}, {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

// One alternative per IBAN length, so the country code fixes how many characters follow: either
// all run together or in groups of four separated by single spaces (the last group shorter).
std::string iban_pattern() {
  const std::string word = word_class();
  std::map<int, std::string> by_length;
  for (const IbanCountry& c : kIbanCountries) {
    std::string& codes = by_length[c.length];
    codes += (codes.empty() ? "" : "|") + std::string(c.code);
  }
  std::string alternatives;
  for (const auto& [length, codes] : by_length) {
    int groups = (length - 4) / 4, rest = (length - 4) % 4;
    if (!alternatives.empty()) alternatives += "|";
    alternatives += "(?:" + codes + ")[0-9]{2}( ?)[A-Z0-9]{4}";
    alternatives += "(?:\\g{-1}[A-Z0-9]{4}){" + std::to_string(groups - 1) + "}";
    if (rest > 0) alternatives += "\\g{-1}[A-Z0-9]{" + std::to_string(rest) + "}";
  }
  return "(?<!" + word + ")(?:" + alternatives + ")(?!" + word + ")";
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string digits_of(std::string_view s) {
  std::string d;
  for (char c : s)
    if (is_digit(c)) d += c;
  return d;
}

bool luhn_valid(const std::string& digits) {
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0; twice = !twice) {
    int d = digits[i] - '0';
    if (twice) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 == 0;
}

// Issuer prefix and the lengths that issuer uses: Visa, Mastercard, Amex, Discover.
bool known_card(const std::string& d) {
  size_t n = d.size();
  int p2 = std::stoi(d.substr(0, 2)), p4 = std::stoi(d.substr(0, 4));
  if (d[0] == '4') return n == 13 || n == 16 || n == 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n == 16;
  if (p2 == 34 || p2 == 37) return n == 15;
  if (p4 == 6011 || p2 == 65) return n >= 16 && n <= 19;
  return false;
}

bool iban_valid(std::string_view s) {
  std::string compact;
  for (char c : s)
    if (c != ' ') compact += c;
  std::rotate(compact.begin(), compact.begin() + 4, compact.end());
  int r = 0;
  for (char c : compact) r = is_digit(c) ? (r * 10 + (c - '0')) % 97 : (r * 100 + (c - 'A' + 10)) % 97;
  return r == 1;
}

bool isbn13_valid(const std::string& d) {
  if (d.size() != 13 || (d.compare(0, 3, "978") != 0 && d.compare(0, 3, "979") != 0)) return false;
  int sum = 0;
  for (size_t i = 0; i < 13; ++i) sum += (d[i] - '0') * (i % 2 ? 3 : 1);
  return sum % 10 == 0;
}

// Lower-cased word (ASCII letters, or "§") just before `pos`, skipping the separators written
// between a label and its number ("version: ", "v.", "build-", "Section #"); empty if none.
std::string label_before(std::string_view text, size_t pos) {
  const size_t lo = pos > 24 ? pos - 24 : 0;
  size_t i = pos;
  while (i > lo && std::string_view(" \t:=#(.-").find(text[i - 1]) != std::string_view::npos) --i;
  if (i >= lo + 2 && text.substr(i - 2, 2) == "\xC2\xA7") return "\xC2\xA7";
  const size_t end = i;
  while (i > lo && is_alpha(text[i - 1])) --i;
  if (i > 0 && is_alpha(text[i - 1])) return "";  // a word longer than the window
  std::string word;
  for (size_t k = i; k < end; ++k) word += lower(text[k]);
  return word;
}

// Dotted quads after these are version, section or OID numbers.
bool after_numbering_word(std::string_view text, size_t pos) {
  static const std::set<std::string> kWords = {"version", "ver",   "v",       "release", "rel",     "rev",
                                               "revision", "build", "firmware", "section", "sec",     "chapter",
                                               "ch",      "clause", "step",    "table",   "figure",  "fig",
                                               "oid",     "\xC2\xA7"};
  return kWords.count(label_before(text, pos)) > 0;
}

// "ISBN" or "DOI" within the 20 bytes before `pos` (Dolma drops phone matches near these).
bool after_isbn_or_doi(std::string_view text, size_t pos) {
  const size_t lo = pos > 20 ? pos - 20 : 0;
  std::string window;
  for (size_t i = lo; i < pos; ++i) window += lower(text[i]);
  if (window.find("isbn") != std::string::npos) return true;
  for (size_t at = window.find("doi"); at != std::string::npos; at = window.find("doi", at + 1)) {
    bool left = at == 0 ? lo > 0 && is_alpha(text[lo - 1]) : is_alpha(window[at - 1]);
    bool right = at + 3 < window.size() && is_alpha(window[at + 3]);
    if (!left && !right) return true;
  }
  return false;
}

bool ipv4_global(const unsigned o[4]) {
  // Python's ipaddress non-global IPv4 networks plus multicast: (network, prefix length).
  struct Net {
    uint32_t base;
    int bits;
  };
  static constexpr Net kLocal[] = {
      {0x00000000, 8},  {0x0A000000, 8},  {0x64400000, 10}, {0x7F000000, 8},  {0xA9FE0000, 16},
      {0xAC100000, 12}, {0xC0000000, 24}, {0xC0000200, 24}, {0xC0A80000, 16}, {0xC6120000, 15},
      {0xC6336400, 24}, {0xCB007100, 24}, {0xE0000000, 4},  {0xF0000000, 4},
  };
  uint32_t a = o[0] << 24 | o[1] << 16 | o[2] << 8 | o[3];
  for (const Net& n : kLocal)
    if ((a >> (32 - n.bits)) == (n.base >> (32 - n.bits))) return false;
  return true;
}

struct Found {
  size_t start, end;
  PiiType type;
};

}  // namespace

const char* pii_name(PiiType type) { return kNames[static_cast<size_t>(type)]; }
const char* pii_placeholder(PiiType type) { return kPlaceholders[static_cast<size_t>(type)]; }

PiiType parse_pii_type(const std::string& name) {
  std::string expected;
  for (size_t i = 0; i < kNumPiiTypes; ++i) {
    if (name == kNames[i]) return static_cast<PiiType>(i);
    expected += (i ? ", " : "") + std::string(kNames[i]);
  }
  throw UsageError("--pii-types: unknown type '" + name + "' (expected " + expected + ")");
}

uint64_t PiiCounts::total() const {
  uint64_t t = 0;
  for (uint64_t v : n) t += v;
  return t;
}

struct PiiRedactor::Impl {
  std::array<pcre2_code*, kNumPiiTypes> code{};  // null where the type is not enabled
  pcre2_match_data* match = nullptr;
  std::vector<Found> found;  // reused between calls

  ~Impl() {
    for (pcre2_code* c : code) pcre2_code_free(c);
    pcre2_match_data_free(match);
  }

  void compile(PiiType type, const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE at = 0;
    // MATCH_INVALID_UTF: invalid UTF-8 never matches instead of failing the whole call, and
    // the subject is not re-validated on every call (which would make scanning quadratic).
    pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at, nullptr);
    if (!c) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw_internal(__FILE__, __LINE__,
                     std::string("PII pattern '") + pii_name(type) + "' does not compile at offset " +
                         std::to_string(at) + ": " + reinterpret_cast<const char*>(msg));
    }
    code[static_cast<size_t>(type)] = c;
    // Without JIT support (some platforms, or JIT disabled at build) the interpreter is used.
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
  }

  // Finds the first match of `type`'s pattern in text[0, limit) starting at or after `from`;
  // sets [start, end) and returns true, or returns false when there is none.
  bool next(PiiType type, std::string_view text, size_t limit, size_t from, size_t& start, size_t& end) {
    int rc = pcre2_match(code[static_cast<size_t>(type)], reinterpret_cast<PCRE2_SPTR>(text.data()), limit, from, 0,
                         match, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw_internal(__FILE__, __LINE__,
                     std::string("PII pattern '") + pii_name(type) + "' failed: " + reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
    start = ov[0];
    end = ov[1];
    return true;
  }

  // Every match of a pattern over the whole text that `keep(start, end)` accepts; keep may
  // shorten `end`. No pattern matches the empty string, so scanning always advances.
  template <class Keep>
  void scan(PiiType type, std::string_view text, Keep keep) {
    if (!code[static_cast<size_t>(type)]) return;
    size_t start = 0, end = 0;
    for (size_t from = 0; from < text.size() && next(type, text, text.size(), from, start, end); from = end)
      if (keep(start, end)) found.push_back({start, end, type});
  }

  // Addresses are searched only around each '@': an unanchored search for a pattern that can
  // start at any letter would try every position of the text.
  void scan_email(std::string_view text) {
    if (!code[static_cast<size_t>(PiiType::email)]) return;
    constexpr size_t kMaxLocal = 64, kMaxDomain = 253, kLookahead = 8;
    size_t from = 0;  // after the previous '@' or address: no address starts before it
    for (size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
      if (at < from) continue;
      size_t begin = std::max(from, at > kMaxLocal ? at - kMaxLocal : 0);
      while ((static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) ++begin;  // not inside a character
      size_t limit = std::min(text.size(), at + 1 + kMaxDomain + kLookahead), start = 0, end = 0;
      from = at + 1;
      if (!next(PiiType::email, text, limit, begin, start, end)) continue;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
      std::string_view domain = text.substr(ov[2], ov[3] - ov[2]);
      from = end;
      // "icon@2x.png" is a file name for a high-density image, not an address.
      size_t d = 0;
      while (d < domain.size() && is_digit(domain[d])) ++d;
      if (d > 0 && d + 1 < domain.size() && lower(domain[d]) == 'x' && domain[d + 1] == '.') continue;
      // Debian-style "Name <name@host.org>": the brackets go with the address, leaving "Name <EMAIL>".
      if (start > 0 && end < text.size() && text[start - 1] == '<' && text[end] == '>') --start, ++end;
      found.push_back({start, end, PiiType::email});
    }
  }

  void find_all(std::string_view text) {
    found.clear();
    scan_email(text);
    scan(PiiType::phone, text, [&](size_t s, size_t e) {
      std::string d = digits_of(text.substr(s, e - s));
      return d.size() >= 9 && d.size() <= 15 && !isbn13_valid(d) && !after_isbn_or_doi(text, s);
    });
    scan(PiiType::ipv4, text, [&](size_t s, size_t e) {
      unsigned o[4] = {0, 0, 0, 0};
      size_t k = 0;
      for (size_t i = s; i < e; ++i) {
        if (text[i] == '.')
          ++k;
        else
          o[k] = o[k] * 10 + static_cast<unsigned>(text[i] - '0');
      }
      return ipv4_global(o) && !after_numbering_word(text, s);
    });
    scan(PiiType::ipv6, text, [&](size_t s, size_t e) {
      std::string candidate(text.substr(s, e - s));
      unsigned char a[16];
      if (inet_pton(AF_INET6, candidate.c_str(), a) != 1) return false;
      int groups = 0;  // non-empty ones
      for (size_t i = 0; i < candidate.size(); ++i)
        if (candidate[i] != ':' && (i == 0 || candidate[i - 1] == ':')) ++groups;
      bool documentation = (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) ||  // 2001:db8::/32
                           (a[0] == 0x3f && a[1] == 0xff && a[2] < 0x10);                     // 3fff::/20
      return groups >= 3 && !documentation;
    });
    scan(PiiType::credit_card, text, [&](size_t s, size_t& e) {
      std::string d = digits_of(text.substr(s, e - s));
      if (luhn_valid(d) && known_card(d)) return true;
      // A 19-digit grouped candidate may be a 16-digit card followed by its 3-digit CVV.
      if (d.size() != 19 || is_digit(text[s + 4])) return false;
      d.resize(16);
      if (!luhn_valid(d) || !known_card(d)) return false;
      e -= 4;
      return true;
    });
    scan(PiiType::us_ssn, text, [](size_t, size_t) { return true; });
    scan(PiiType::iban, text, [&](size_t s, size_t e) { return iban_valid(text.substr(s, e - s)); });
  }
};

PiiRedactor::PiiRedactor(const PiiConfig& config) : impl_(std::make_unique<Impl>()) {
  for (PiiType t : config.types) {
    switch (t) {
      case PiiType::email: impl_->compile(t, email_pattern()); break;
      case PiiType::phone: impl_->compile(t, phone_pattern()); break;
      case PiiType::ipv4: impl_->compile(t, ipv4_pattern()); break;
      case PiiType::ipv6: impl_->compile(t, ipv6_pattern()); break;
      case PiiType::credit_card: impl_->compile(t, card_pattern()); break;
      case PiiType::us_ssn: impl_->compile(t, ssn_pattern()); break;
      case PiiType::iban: impl_->compile(t, iban_pattern()); break;
    }
  }
  // The IBAN pattern has one capture group per length; 32 pairs cover every pattern.
  impl_->match = pcre2_match_data_create(32, nullptr);
  if (!impl_->match) throw std::bad_alloc();
}

PiiRedactor::~PiiRedactor() = default;
PiiRedactor::PiiRedactor(PiiRedactor&&) noexcept = default;
PiiRedactor& PiiRedactor::operator=(PiiRedactor&&) noexcept = default;

std::string PiiRedactor::redact(std::string_view text, PiiCounts& counts) {
  std::vector<Found>& found = impl_->found;
  impl_->find_all(text);
  if (found.empty()) return std::string(text);

  // Longest first, then earliest; a match is kept only if it overlaps none kept before.
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    size_t la = a.end - a.start, lb = b.end - b.start;
    return la != lb ? la > lb : a.start < b.start;
  });
  std::map<size_t, Found> kept;  // by start
  for (const Found& f : found) {
    auto after = kept.lower_bound(f.start);
    if (after != kept.end() && after->first < f.end) continue;
    if (after != kept.begin() && std::prev(after)->second.end > f.start) continue;
    kept.emplace(f.start, f);
  }

  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const auto& [start, f] : kept) {
    out.append(text.substr(pos, start - pos));
    out.append(pii_placeholder(f.type));
    ++counts[f.type];
    pos = f.end;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace bellows::text
