#include "text/cleanup.hpp"

#include <simdjson.h>
#include <utf8proc.h>

#include <cstdlib>

#include "core/error.hpp"

namespace bellows::text {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid
// (Unicode Table 3-7: well-formed byte sequences).
size_t valid_seq_len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  size_t n = s.size() - i;
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (b(1) & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3) return 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return b(1) >= lo && b(1) <= hi && (b(2) & 0xC0) == 0x80 ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4) return 0;
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return b(1) >= lo && b(1) <= hi && (b(2) & 0xC0) == 0x80 && (b(3) & 0xC0) == 0x80 ? 4 : 0;
  }
  return 0;
}

// Code points that are NFC quick-check "Yes" and can never combine with a neighbour under
// NFC (canonical combining class 0, not the second half of any composition). Text made only of
// these is already NFC, so the common case skips utf8proc's full decomposition and
// recomposition (a unit test checks every code point listed here against utf8proc).
bool nfc_inert(uint32_t cp) {
  return cp < 0x300 || (cp >= 0x400 && cp < 0x483) || (cp >= 0x48A && cp < 0x530) || (cp >= 0x5D0 && cp < 0x5EB) ||
         (cp >= 0x620 && cp < 0x64B) || (cp >= 0xE01 && cp < 0xE31) || (cp >= 0x1E00 && cp < 0x1F00) ||
         (cp >= 0x2010 && cp < 0x2028) || (cp >= 0x2190 && cp < 0x2200) || (cp >= 0x2500 && cp < 0x2580) ||
         (cp >= 0x3041 && cp < 0x3097) || (cp >= 0x30A1 && cp < 0x30FB) || (cp >= 0x4E00 && cp < 0xA000) ||
         (cp >= 0xAC00 && cp < 0xD7A4) || cp == 0xFFFD || (cp >= 0x1F300 && cp < 0x1FB00);
}

// Decodes the code point of a valid sequence of length len.
uint32_t decode(std::string_view s, size_t i, size_t len) {
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k])); };
  switch (len) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

// Length of the "maximal subpart" of an ill-formed sequence at s[i] (Unicode 3.9, U+FFFD
// substitution of maximal subparts, as Python, ICU and browsers decode): the longest prefix of a
// well-formed sequence, at least one byte.
size_t invalid_subpart_len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  size_t n = s.size() - i;
  unsigned char c = b(0);
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  size_t len = 1;
  if (len < n && b(len) >= lo && b(len) <= hi) {
    ++len;
    while (len <= need && len < n && (b(len) & 0xC0) == 0x80) ++len;
  }
  return len;
}

bool is_unicode_space(uint32_t cp) {
  return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_removed(uint32_t cp) {
  if (cp < 0x20) return cp != '\t' && cp != '\n';
  if (cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return true;
  return cp == 0x200B || cp == 0xFEFF;  // zero-width space, BOM
}

}  // namespace

uint64_t repair_utf8(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  uint64_t bad = 0;
  size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < in.size()) {
    if (static_cast<unsigned char>(in[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len = valid_seq_len(in, i);
    if (len > 0) {
      i += len;
      continue;
    }
    out.append(in.data() + run, i - run);
    ++bad;
    out += kReplacement;
    i += invalid_subpart_len(in, i);
    run = i;
  }
  out.append(in.data() + run, i - run);
  return bad;
}

bool is_valid_utf8(std::string_view s) {
  // simdjson's SIMD validator (the simdutf algorithm): same rules as valid_seq_len (no
  // overlongs, surrogates or code points past U+10FFFF), an order of magnitude faster on the
  // tokenizer's hot path. The unit tests compare the two.
  return simdjson::validate_utf8(s.data(), s.size());
}

bool is_valid_utf8_reference(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_seq_len(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

bool is_nfc_inert(uint32_t cp) { return nfc_inert(cp); }

std::string nfc_span(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    static_cast<utf8proc_ssize_t>(s.size()), &out,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) throw InternalError(std::string("utf8proc NFC failed on valid UTF-8: ") + utf8proc_errmsg(n));
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

std::string to_nfc(std::string_view s) {
  // NFC works segment by segment: an inert code point starts a segment that nothing before it
  // can reach. So only the stretches around non-inert code points go through utf8proc: from
  // the code point before the stretch (it may compose with what follows) to the next inert one.
  std::string out;
  size_t copied = 0, prev = 0;  // prev: start of the previous code point
  for (size_t i = 0; i < s.size();) {
    size_t len = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : valid_seq_len(s, i);
    if (len == 0) return nfc_span(s);  // not valid UTF-8: let utf8proc report it
    if (len == 1 || nfc_inert(decode(s, i, len))) {
      prev = i;
      i += len;
      continue;
    }
    size_t begin = i > 0 ? std::max(prev, copied) : 0, end = i + len;
    while (end < s.size()) {
      size_t l = static_cast<unsigned char>(s[end]) < 0x80 ? 1 : valid_seq_len(s, end);
      if (l == 0) return nfc_span(s);
      if (l == 1 || nfc_inert(decode(s, end, l))) break;
      end += l;
    }
    if (out.empty()) out.reserve(s.size());
    out.append(s.data() + copied, begin - copied);
    out += nfc_span(s.substr(begin, end - begin));
    copied = end;
    prev = end;
    i = end;
  }
  if (copied == 0) return std::string(s);
  out.append(s.data() + copied, s.size() - copied);
  return out;
}

std::string normalize_whitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t blank_run = 0;        // consecutive empty lines already written
  bool at_line_start = true;
  size_t line_content_end = 0; // out.size() after the last non-space character of this line
  auto end_line = [&] {
    out.resize(line_content_end);
    if (at_line_start) {
      // An empty line: keep one between paragraphs, none at the start of the document.
      if (!out.empty() && blank_run == 0) out += '\n';
      ++blank_run;
    } else {
      out += '\n';
      blank_run = 0;
    }
    line_content_end = out.size();
    at_line_start = true;
  };
  for (size_t i = 0; i < s.size();) {
    // Most text is printable ASCII: copy such runs whole.
    size_t j = i;
    while (j < s.size() && static_cast<unsigned char>(s[j]) > 0x20 && static_cast<unsigned char>(s[j]) < 0x7F) ++j;
    if (j > i) {
      out.append(s.data() + i, j - i);
      line_content_end = out.size();
      at_line_start = false;
      i = j;
      continue;
    }
    size_t len = valid_seq_len(s, i);
    if (len == 0) len = 1;  // callers pass valid UTF-8; be safe anyway
    uint32_t cp = decode(s, i, len);
    if (cp == '\r') {
      end_line();
      i += (i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1;
      continue;
    }
    if (cp == '\n') {
      end_line();
      ++i;
      continue;
    }
    if (is_removed(cp)) {
      i += len;
      continue;
    }
    if (is_unicode_space(cp) || cp == ' ' || cp == '\t') {
      out += cp == '\t' ? '\t' : ' ';
    } else {
      out.append(s.data() + i, len);
      line_content_end = out.size();
      at_line_start = false;
    }
    i += len;
  }
  out.resize(line_content_end);
  // Drop trailing newlines: the document ends with its last non-empty line.
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

CleanupResult cleanup(std::string_view raw, const CleanupConfig& cfg) {
  CleanupResult r;
  std::string repaired;
  r.invalid_utf8 = repair_utf8(raw, repaired);
  if (r.invalid_utf8 > 0 && !cfg.repair_utf8) return r;
  std::string t = cfg.nfc ? to_nfc(repaired) : std::move(repaired);
  r.text = cfg.whitespace ? normalize_whitespace(t) : std::move(t);
  return r;
}

}  // namespace bellows::text
