// Stage 2 of curation: language identification with CLD2 (Debian's libcld2: 83 languages with
// their scripts). Fast (hundreds of MB/s) and deterministic.
#pragma once

#include <string>
#include <string_view>

namespace bellows::text {

struct LangGuess {
  std::string code;    // ISO 639-1 where one exists ("en", "de", "zh"), "un" when unknown
  float score = 0.0f;  // share of the text in that language, 0..1; 0 when CLD2 calls it unreliable
  bool reliable = false;
};

// How much of a document is looked at.
constexpr size_t kLangIdPrefixBytes = 64 * 1024;

// `text` must be valid UTF-8; its first kLangIdPrefixBytes decide.
LangGuess detect_language(std::string_view text);

}  // namespace bellows::text
