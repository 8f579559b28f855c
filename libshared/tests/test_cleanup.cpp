#include <gtest/gtest.h>
#include <utf8proc.h>

#include <random>
#include <set>

#include "text/cleanup.hpp"
#include "text/langid.hpp"

using namespace bellows::text;

namespace {

std::string utf8(uint32_t cp) {
  utf8proc_uint8_t buf[4];
  auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  return std::string(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
}

// Reference: utf8proc over the whole string.
std::string nfc_reference(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &out,
                        static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  free(out);
  return r;
}

}  // namespace

TEST(Cleanup, RepairsInvalidUtf8AndCountsIt) {
  std::string out;
  EXPECT_EQ(repair_utf8("plain", out), 0u);
  EXPECT_EQ(out, "plain");
  EXPECT_EQ(repair_utf8("a\xff" "b", out), 1u);
  EXPECT_EQ(out, "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(repair_utf8("\xC3", out), 1u);              // truncated 2-byte sequence at the end
  // Maximal subparts, as Python decodes: overlong and surrogate encodings are one U+FFFD a byte,
  // a truncated sequence is one U+FFFD for its valid start.
  EXPECT_EQ(repair_utf8("\xE0\x80\xAF", out), 3u);
  EXPECT_EQ(repair_utf8("\xED\xA0\x80", out), 3u);
  EXPECT_EQ(repair_utf8("\xE2\x82" "x", out), 1u);
  EXPECT_EQ(out, "\xEF\xBF\xBD" "x");
  EXPECT_EQ(repair_utf8("\xF0\x9F\x99", out), 1u);
  EXPECT_EQ(repair_utf8("\x80\x80", out), 2u);
  EXPECT_EQ(repair_utf8("x\xC3\xA9y\xF0\x9F\x99\x82", out), 0u);  // é and 🙂 are fine
  EXPECT_TRUE(is_valid_utf8(out));
  EXPECT_FALSE(is_valid_utf8("\xff"));
}

// The SIMD validator against the byte-by-byte reference, on random byte strings biased towards
// the edges (lead bytes, continuations, overlongs, surrogates, past U+10FFFF) and long ASCII runs.
TEST(Cleanup, FastUtf8ValidationEqualsReference) {
  const unsigned char edges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  uint64_t state = 7;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  size_t valid = 0;
  for (int round = 0; round < 200000; ++round) {
    std::string s(next() % 6 == 0 ? next() % 70 : 0, 'x');  // ASCII runs move the edges across SIMD blocks
    size_t len = next() % 8;
    for (size_t i = 0; i < len; ++i) s += static_cast<char>(edges[next() % sizeof edges]);
    if (next() % 2) s += std::string(next() % 70, 'y');
    bool want = is_valid_utf8_reference(s);
    ASSERT_EQ(is_valid_utf8(s), want) << round;
    valid += want;
  }
  EXPECT_GT(valid, 10000u);
}

TEST(Cleanup, NfcComposes) {
  EXPECT_EQ(to_nfc("e\xCC\x81"), "\xC3\xA9");       // e + COMBINING ACUTE -> é
  EXPECT_EQ(to_nfc("Ae\xCC\x81z"), "A\xC3\xA9z");
  EXPECT_EQ(to_nfc("\xE2\x84\xAB"), "\xC3\x85");     // ANGSTROM SIGN -> Å (singleton)
  EXPECT_EQ(to_nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(to_nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // Hangul L+V -> 가
}

// The fast path's list of "inert" code points must really be inert: NFC leaves each alone,
// each is a starter (combining class 0), and none appears after the first position of any
// canonical decomposition (so none can be the second half of a composition).
TEST(Cleanup, NfcInertCodePointsAreReallyInert) {
  std::set<uint32_t> seconds;
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    utf8proc_int32_t d[8];
    int last = 0;
    auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), d, 8, UTF8PROC_DECOMPOSE, &last);
    for (utf8proc_ssize_t k = 1; k < n && k < 8; ++k) seconds.insert(static_cast<uint32_t>(d[k]));
  }
  for (uint32_t cp = 0x1161; cp <= 0x1175; ++cp) seconds.insert(cp);  // Hangul V jamo
  for (uint32_t cp = 0x11A8; cp <= 0x11C2; ++cp) seconds.insert(cp);  // Hangul T jamo
  size_t checked = 0;
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if ((cp >= 0xD800 && cp < 0xE000) || !is_nfc_inert(cp)) continue;
    ++checked;
    ASSERT_EQ(utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class, 0) << std::hex << cp;
    ASSERT_FALSE(seconds.count(cp)) << std::hex << cp;
    ASSERT_EQ(nfc_reference(utf8(cp)), utf8(cp)) << std::hex << cp;
  }
  EXPECT_GT(checked, 30000u);
}

// Segment-wise NFC equals NFC of the whole string, on random mixes of inert characters,
// combining marks, Hangul jamo, singletons and starters that compose.
TEST(Cleanup, NfcSegmentsEqualWholeStringNfc) {
  const std::vector<uint32_t> pool = {'a', 'e', 'A', ' ', '\n', 0xE9, 0x301, 0x300, 0x308, 0x327, 0x1100, 0x1161, 0x11A8,
                                      0xAC00, 0x212B, 0x2126, 0x3099, 0x304B, 0x30AB, 0x9AD8, 0x1F642, 0x0E01, 0x0E33,
                                      0x09C7, 0x09BE, 0x1EC5, 0x2190, 0x338, 0x0627, 0x0653};
  std::mt19937 rng(7);
  for (int t = 0; t < 3000; ++t) {
    std::string s;
    size_t n = 1 + rng() % 12;
    for (size_t i = 0; i < n; ++i) s += utf8(pool[rng() % pool.size()]);
    ASSERT_EQ(to_nfc(s), nfc_reference(s)) << s;
  }
}

TEST(Cleanup, NormalisesWhitespaceAndControls) {
  EXPECT_EQ(normalize_whitespace("a\r\nb\rc"), "a\nb\nc");
  EXPECT_EQ(normalize_whitespace("line   \nnext\t\t\n"), "line\nnext");
  EXPECT_EQ(normalize_whitespace("\n\n\npara one\n\n\n\n\npara two\n\n"), "para one\n\npara two");
  EXPECT_EQ(normalize_whitespace("    indented code\n\tkept"), "    indented code\n\tkept");
  EXPECT_EQ(normalize_whitespace("no\xC2\xA0" "break\xE2\x80\x83" "em"), "no break em");  // NBSP, EM SPACE
  EXPECT_EQ(normalize_whitespace("zero\xE2\x80\x8Bwidth\xEF\xBB\xBF"), "zerowidth");       // ZWSP, BOM
  EXPECT_EQ(normalize_whitespace("bell\x07 del\x7F c1\xC2\x85"), "bell del c1");
  EXPECT_EQ(normalize_whitespace("   \n \t \n"), "");
}

TEST(Cleanup, FullStageRepairsOrDrops) {
  CleanupConfig cfg;
  CleanupResult r = cleanup("bad\xff byte\r\n", cfg);
  EXPECT_EQ(r.invalid_utf8, 1u);
  EXPECT_EQ(r.text, "bad\xEF\xBF\xBD byte");
  cfg.repair_utf8 = false;
  r = cleanup("bad\xff byte", cfg);
  EXPECT_EQ(r.invalid_utf8, 1u);
  EXPECT_TRUE(r.text.empty());
}

TEST(LangId, DetectsLanguagesAndDistrustsShortText) {
  LangGuess en = detect_language(
      "The committee met on Tuesday to discuss the budget for the coming year, and after a long debate the members "
      "agreed to fund the new library and the repairs to the old bridge.");
  EXPECT_EQ(en.code, "en");
  EXPECT_TRUE(en.reliable);
  EXPECT_GT(en.score, 0.9f);
  LangGuess de = detect_language(
      "Der Ausschuss traf sich am Dienstag, um über den Haushalt für das kommende Jahr zu beraten, und nach langer "
      "Debatte beschlossen die Mitglieder, die neue Bibliothek und die Reparatur der alten Brücke zu finanzieren.");
  EXPECT_EQ(de.code, "de");
  LangGuess none = detect_language("1234 5678");
  EXPECT_EQ(none.score, 0.0f);
}
