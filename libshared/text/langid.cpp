#include "text/langid.hpp"

#include <cld2/public/compact_lang_det.h>

#include <algorithm>

namespace bellows::text {

LangGuess detect_language(std::string_view text) {
  CLD2::Language lang3[3];
  int percent3[3] = {0, 0, 0};
  int text_bytes = 0;
  bool reliable = false;
  // The first 64 KiB decide: enough text for a stable verdict, and the cost of a 10 MB changelog
  // stays that of a page. Cut at a character boundary.
  size_t n = std::min(text.size(), kLangIdPrefixBytes);
  while (n < text.size() && n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  int len = static_cast<int>(n);
  CLD2::Language top = CLD2::ExtDetectLanguageSummary(text.data(), len, /*is_plain_text=*/true, lang3, percent3,
                                                      &text_bytes, &reliable);
  LangGuess g;
  g.code = CLD2::LanguageCode(top);
  g.reliable = reliable;
  // An unreliable guess (too little text, or mixed) gets score 0 so that --min-lang-score
  // rejects it rather than trusting a coin flip.
  g.score = reliable && top != CLD2::UNKNOWN_LANGUAGE ? static_cast<float>(percent3[0]) / 100.0f : 0.0f;
  if (top == CLD2::UNKNOWN_LANGUAGE) g.code = "un";
  return g;
}

}  // namespace bellows::text
