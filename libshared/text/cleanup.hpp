// Stage 1 of curation: make text valid, canonical UTF-8 with tidy whitespace, so that every
// later stage (language ID, rules, hashes) sees one spelling of the same text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bellows::text {

struct CleanupConfig {
  bool repair_utf8 = true;   // false: a document with invalid UTF-8 is dropped instead
  bool nfc = true;           // Unicode NFC (canonical composition)
  bool whitespace = true;    // normalise whitespace and control characters
};

struct CleanupResult {
  std::string text;
  uint64_t invalid_utf8 = 0;  // invalid byte sequences found (each replaced by U+FFFD when repairing)
};

// Replaces each maximal ill-formed subpart (a lone or unexpected byte, the valid start of a
// truncated sequence; an overlong or surrogate encoding is one U+FFFD per byte) by U+FFFD, as
// Unicode recommends and Python's decode(errors="replace") does, and returns how many there
// were.
uint64_t repair_utf8(std::string_view in, std::string& out);
bool is_valid_utf8(std::string_view s);
// The same, byte by byte: the plain reference the fast one is tested against.
bool is_valid_utf8_reference(std::string_view s);

// NFC of valid UTF-8. Text made only of code points that NFC never changes or combines (ASCII,
// Latin-1, most Latin, Cyrillic, Hebrew and Arabic letters, CJK, kana, Hangul syllables, emoji)
// is returned as is without the full normalisation.
std::string to_nfc(std::string_view valid_utf8);
bool is_nfc_inert(uint32_t code_point);  // exposed for the test that checks that list

// Whitespace and control characters:
//  - CR LF and lone CR become LF; other C0/C1 controls (but TAB and LF), zero-width spaces and
//    the BOM are removed; no-break and other Unicode spaces become ' ';
//  - trailing whitespace of each line is removed; more than one empty line in a row collapses
//    to one; leading and trailing empty lines are removed.
// Runs of spaces inside a line are kept: indentation carries meaning in code and tables.
std::string normalize_whitespace(std::string_view valid_utf8);

// All three steps in order. With repair_utf8 false and invalid input, returns the count and an
// empty text; the caller drops the document.
CleanupResult cleanup(std::string_view raw, const CleanupConfig& cfg);

}  // namespace bellows::text
