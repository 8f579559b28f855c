#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"
#include "text/pii.hpp"

using namespace bellows;
using namespace bellows::text;

namespace {

class Pii : public ::testing::Test {
 protected:
  // Redacts `in` with all types enabled; the counts of this call only.
  std::string redact(const std::string& in) {
    counts_ = PiiCounts{};
    return redactor_.redact(in, counts_);
  }
  // Checks that `in` becomes `out` with exactly `n` items of `type` (and nothing else) replaced.
  void expect(const std::string& in, const std::string& out, PiiType type, uint64_t n = 1) {
    EXPECT_EQ(redact(in), out) << "input: " << in;
    EXPECT_EQ(counts_[type], n) << "input: " << in;
    EXPECT_EQ(counts_.total(), n) << "input: " << in;
  }
  void expect_unchanged(const std::string& in) {
    EXPECT_EQ(redact(in), in);
    EXPECT_EQ(counts_.total(), 0u) << "input: " << in;
  }

  PiiRedactor redactor_{PiiConfig{}};
  PiiCounts counts_;
};

TEST(PiiNames, NamesPlaceholdersAndParsing) {
  const std::vector<std::pair<PiiType, std::string>> all = {
      {PiiType::email, "email"},   {PiiType::phone, "phone"},           {PiiType::ipv4, "ipv4"},
      {PiiType::ipv6, "ipv6"},     {PiiType::credit_card, "credit_card"}, {PiiType::us_ssn, "us_ssn"},
      {PiiType::iban, "iban"}};
  for (const auto& [type, name] : all) {
    EXPECT_EQ(pii_name(type), name);
    EXPECT_EQ(parse_pii_type(name), type);
  }
  EXPECT_STREQ(pii_placeholder(PiiType::email), "<EMAIL>");
  EXPECT_STREQ(pii_placeholder(PiiType::phone), "<PHONE>");
  EXPECT_STREQ(pii_placeholder(PiiType::ipv4), "<IP_ADDRESS>");
  EXPECT_STREQ(pii_placeholder(PiiType::ipv6), "<IP_ADDRESS>");
  EXPECT_STREQ(pii_placeholder(PiiType::credit_card), "<CREDIT_CARD>");
  EXPECT_STREQ(pii_placeholder(PiiType::us_ssn), "<US_SSN>");
  EXPECT_STREQ(pii_placeholder(PiiType::iban), "<IBAN>");
  EXPECT_EQ(PiiConfig{}.types.size(), kNumPiiTypes);
}

TEST(PiiNames, UnknownTypeIsAUsageError) {
  try {
    parse_pii_type("ssn");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "--pii-types: unknown type 'ssn' (expected email, phone, ipv4, ipv6, credit_card, us_ssn, iban)");
  }
  EXPECT_THROW(parse_pii_type("Email"), UsageError);
  EXPECT_THROW(parse_pii_type(""), UsageError);
}

TEST_F(Pii, Email) {
  expect("Contact john.doe@example.com today.", "Contact <EMAIL> today.", PiiType::email);
  expect("Write to x+tag_1@mail.sub.example.co.uk.", "Write to <EMAIL>.", PiiType::email);
  expect("mailto:first-last%team@example.org?subject=hi", "mailto:<EMAIL>?subject=hi", PiiType::email);
  // Debian-style maintainer fields: the brackets are replaced with the address.
  expect("Maintainer: Jane Doe <jane@debian.org>", "Maintainer: Jane Doe <EMAIL>", PiiType::email);
  expect(" -- Jane Doe <jane@debian.org>  Mon, 01 Jan 2024 12:00:00 +0000",
         " -- Jane Doe <EMAIL>  Mon, 01 Jan 2024 12:00:00 +0000", PiiType::email);
  expect("(a@example.com, b@example.net)", "(<EMAIL>, <EMAIL>)", PiiType::email, 2);
  expect("see...john@example.com", "see...<EMAIL>", PiiType::email);
  expect("Grüße an müller@beispiel.de!", "Grüße an <EMAIL>!", PiiType::email);
  expect("请联系zhang.wei@example.cn谢谢", "请联系<EMAIL>谢谢", PiiType::email);
}

TEST_F(Pii, NotEmail) {
  expect_unchanged("root@localhost");
  expect_unchanged("npm install @types/node lodash@4.17.21 react@^18.2.0");
  expect_unchanged("icon@2x.png and logo@3X.webp");
  expect_unchanged("a@b.c is too short a TLD");
  expect_unchanged("@username mentioned @other on the forum");
  expect_unchanged("name@ example.com and name @example.com");
}

TEST_F(Pii, Phone) {
  expect("Call (555) 123-4567 now", "Call <PHONE> now", PiiType::phone);
  expect("Call 555-123-4567.", "Call <PHONE>.", PiiType::phone);
  expect("Fax: 555.123.4567", "Fax: <PHONE>", PiiType::phone);
  expect("Toll free 1-800-555-1234", "Toll free <PHONE>", PiiType::phone);
  expect("London +44 20 7946 0958", "London <PHONE>", PiiType::phone);
  expect("Tel. +44 (0)20 7946 0958", "Tel. <PHONE>", PiiType::phone);
  expect("Berlin: +49 30 1234567", "Berlin: <PHONE>", PiiType::phone);
  expect("US: +1 (555) 123-4567", "US: <PHONE>", PiiType::phone);
  expect("Moscow +7 495 123-45-67", "Moscow <PHONE>", PiiType::phone);
  expect("SMS +12025550123", "SMS <PHONE>", PiiType::phone);
  expect("Tel. 030 1234567 / 0221-12345678", "Tel. <PHONE> / <PHONE>", PiiType::phone, 2);
  expect("UK 020 7946 0958", "UK <PHONE>", PiiType::phone);
  expect("Paris 01 23 45 67 89", "Paris <PHONE>", PiiType::phone);
}

TEST_F(Pii, NotPhone) {
  expect_unchanged("ticket 1234567890 and 12345678901");
  expect_unchanged("ISBN 978-3-16-148410-0, ISBN-10: 0-306-40615-2");
  expect_unchanged("doi: 555-123-4567");      // right after DOI
  expect_unchanged("ISBN 555-123-4567");      // right after ISBN
  expect_unchanged("+1 555 1234 and +49 30");  // fewer than 9 digits
  expect_unchanged("a score of +123,456,789 points");
  expect_unchanged("x+123 456 7890");
  expect_unchanged("list 01 02 03 04 05 06 07");
  expect_unchanged("555 123 4567");  // spaces only: as likely a row of numbers
}

TEST_F(Pii, Ipv4) {
  expect("DNS 8.8.8.8 and 1.1.1.1", "DNS <IP_ADDRESS> and <IP_ADDRESS>", PiiType::ipv4, 2);
  expect("GET from 93.184.216.34:443 failed", "GET from <IP_ADDRESS>:443 failed", PiiType::ipv4);
  expect("Blocked 203.0.114.7/32.", "Blocked <IP_ADDRESS>/32.", PiiType::ipv4);
  expect("服务器8.8.4.4。", "服务器<IP_ADDRESS>。", PiiType::ipv4);
  expect("...45.33.32.156", "...<IP_ADDRESS>", PiiType::ipv4);
}

TEST_F(Pii, NotIpv4) {
  // Not globally routable: private, loopback, link-local, shared, documentation, multicast, masks.
  expect_unchanged("192.168.1.1 10.0.0.1 172.16.5.4 127.0.0.1 0.0.0.0 169.254.1.1 100.64.0.1");
  expect_unchanged("192.0.2.1 198.51.100.7 203.0.113.9 224.0.0.251 255.255.255.0 255.255.255.255");
  expect_unchanged("OID 1.3.6.1.4.1 and 1.2.3.4.5");
  expect_unchanged("version 1.2.3.4, Version: 4.0.1.2, v. 8.8.8.8, ver.2.0.0.1, rev 3.1.4.1");
  expect_unchanged("see Section 4.2.1.3, \xC2\xA7 3.1.2.1 and fig. 2.1.3.4");
  expect_unchanged("v1.2.3.4 build-1.2.3.4 256.1.1.1 1.2.3.256 01.02.03.04 8.8.8.8x");
}

TEST_F(Pii, Ipv6) {
  expect("Google DNS 2001:4860:4860::8888.", "Google DNS <IP_ADDRESS>.", PiiType::ipv6);
  expect("from 2a00:1450:4001:81c::200e port", "from <IP_ADDRESS> port", PiiType::ipv6);
  expect("http://[2606:4700:4700::1111]:443/", "http://[<IP_ADDRESS>]:443/", PiiType::ipv6);
  expect("full 2606:4700:0000:0000:0000:0000:0000:1111 form", "full <IP_ADDRESS> form", PiiType::ipv6);
  expect("upper 2A03:2880:F10E:83:FACE:B00C:0:25DE", "upper <IP_ADDRESS>", PiiType::ipv6);
}

TEST_F(Pii, NotIpv6) {
  expect_unchanged("at 12:30:45 and 23:59:59.999, 2024:01:15");
  expect_unchanged("::1 and :: and fe80::1ff:fe23:4567:890a and fd12:3456:789a::1");
  expect_unchanged("documentation 2001:db8::1 and 2001:0db8:85a3::8a2e:370:7334");
  expect_unchanged("std::vector<int>::iterator and a::b::c");
  expect_unchanged("MAC 00:1A:2B:3C:4D:5E and 2a00::");
  expect_unchanged("2001:4860:4860::8888::1 is not an address");
}

TEST_F(Pii, CreditCard) {
  expect("Visa 4111 1111 1111 1111 exp 12/25", "Visa <CREDIT_CARD> exp 12/25", PiiType::credit_card);
  expect("card: 4111-1111-1111-1111.", "card: <CREDIT_CARD>.", PiiType::credit_card);
  expect("4111111111111111", "<CREDIT_CARD>", PiiType::credit_card);
  expect("MC 5555555555554444, 2223003122003222", "MC <CREDIT_CARD>, <CREDIT_CARD>", PiiType::credit_card, 2);
  expect("Amex 378282246310005 or 3782 822463 10005", "Amex <CREDIT_CARD> or <CREDIT_CARD>",
         PiiType::credit_card, 2);
  expect("Discover 6011 1111 1111 1117", "Discover <CREDIT_CARD>", PiiType::credit_card);
  // A grouped card followed by a 3-digit CVV: the CVV stays.
  expect("4111 1111 1111 1111 123", "<CREDIT_CARD> 123", PiiType::credit_card);
}

TEST_F(Pii, NotCreditCard) {
  expect_unchanged("4111 1111 1111 1112");    // fails Luhn
  expect_unchanged("1234567812345670");       // Luhn-valid, no known issuer
  expect_unchanged("7992 7398 7130 0008");    // Luhn-valid, no known issuer
  expect_unchanged("41111111111111111");      // Visa prefix, 17 digits
  expect_unchanged("4111 1111 1111 1111 1111 1");  // a longer run of groups
  expect_unchanged("1111 4111 1111 1111 1111");
  expect_unchanged("id 4111111111111111abc and 1.4111111111111111");
}

TEST_F(Pii, UsSsn) {
  expect("SSN: 123-45-6789", "SSN: <US_SSN>", PiiType::us_ssn);
  expect("(078-05-1120)", "(<US_SSN>)", PiiType::us_ssn);
  expect("ssn 899-99-9999.", "ssn <US_SSN>.", PiiType::us_ssn);
}

TEST_F(Pii, NotUsSsn) {
  expect_unchanged("000-12-3456 666-12-3456 900-12-3456 999-99-9999");
  expect_unchanged("123-00-4567 123-45-0000");
  expect_unchanged("123 45 6789 and 123456789 and 123-45-67890 and 1123-45-6789");
}

TEST_F(Pii, Iban) {
  expect("IBAN: DE89 3704 0044 0532 0130 00.", "IBAN: <IBAN>.", PiiType::iban);
  expect("GB29NWBK60161331926819", "<IBAN>", PiiType::iban);
  expect("FR14 2004 1010 0505 0001 3M02 606 (EUR)", "<IBAN> (EUR)", PiiType::iban);
  expect("NL91ABNA0417164300 BE68 5390 0754 7034", "<IBAN> <IBAN>", PiiType::iban, 2);
  expect("CH93 0076 2011 6238 5295 7 / NO93 8601 1117 947", "<IBAN> / <IBAN>", PiiType::iban, 2);
  expect("IT60 X054 2811 1010 0000 0123 456", "<IBAN>", PiiType::iban);
  expect("AT61 1904 3002 3457 3201 ES91 2100 0418 4502 0005 1332", "<IBAN> <IBAN>", PiiType::iban, 2);
}

TEST_F(Pii, NotIban) {
  expect_unchanged("DE89 3704 0044 0532 0130 01");   // check digits wrong
  expect_unchanged("DE89 3704 0044 0532 0130");      // too short for DE
  expect_unchanged("DE89370400440532013000X");        // too long
  expect_unchanged("de89 3704 0044 0532 0130 00");   // lower case
  expect_unchanged("DE89 37040044 0532 0130 00");     // mixed grouping
  expect_unchanged("ZZ89 3704 0044 0532 0130 00");   // no such country
}

// Ordinary numbers of every kind the corpus is full of must come through untouched.
TEST_F(Pii, OrdinaryNumbersPassThrough) {
  const std::vector<std::string> texts = {
      // dates and times
      "2024-01-15", "15.01.2024", "01/15/2024", "2024/01/15", "15-01-2024", "Jan 15, 2024", "20240115",
      "2024-01-15T12:30:45Z", "2024-01-15 12:30:45.123+01:00", "12:30", "12:30:45", "at 9:05 pm",
      // versions
      "1.2.3", "v2.0.1", "10.0.19041", "Windows 10.0.19041.1288", "Python 3.11.4", "kernel 6.1.0-13-amd64",
      "libc6 2.36-9+deb12u4", "openssl 3.0.11-1~deb12u2", "1:2.36-9+deb12u4", "version 1.2.3.4",
      // money, percentages, quantities
      "$1,234.56", "€ 1.234,56", "1,234,567,890", "45%", "+1.5%", "-0.25", "3.14159", "6.022e23", "4.7 GB",
      "1,048,576 bytes", "512 MiB", "1024x768", "1920 x 1080", "98.6°F",
      // years and ranges
      "1990–2005", "1990-2005", "pp. 123-145", "1914-1918-1939", "ZIP 94105-1234",
      // identifiers and codes
      "ISBN 978-3-16-148410-0", "ISBN 9783161484100", "ISBN-10 0-306-40615-2", "ISSN 0317-8471",
      "RFC 2616", "ISO 8601", "CVE-2024-3094", "order #123-456-789", "PO 4500012345",
      "4111 1111 1111 1112", "1234567812345670", "000-12-3456", "666-12-3456", "912-34-5678",
      "localhost:8080", "127.0.0.1:8080", "0.0.0.0:443", "192.168.0.1", "255.255.255.0",
      "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "commit 3f786850e387550fdab836ed7e6dc881de23001b", "0x7fff5fbff8a8",
      "550e8400-e29b-41d4-a716-446655440000", "de:ad:be:ef:00:01", "std::map<int, int>",
      "C++20 and 3+4=7", "lat 48.8566, lon 2.3522", "1/2/3/4", "10.1000/182",
      // plain integers
      "1234567890", "12345678901234", "555 1234", "42",
  };
  for (const std::string& t : texts) expect_unchanged(t);
  std::string all;
  for (const std::string& t : texts) all += t + "\n";
  expect_unchanged(all);
}

TEST_F(Pii, MixedDocument) {
  const std::string in =
      "From: Max Mustermann <max.mustermann@example.de>\n"
      "Tel. +49 30 1234567, mobile (555) 123-4567\n"
      "Server 93.184.216.34 / 2001:4860:4860::8888 (dev box 192.168.1.20)\n"
      "Card 4111 1111 1111 1111, SSN 123-45-6789, IBAN DE89 3704 0044 0532 0130 00\n"
      "Release 2.36-9+deb12u4 on 2024-01-15 at 12:30, price $1,234.56, ISBN 978-3-16-148410-0\n";
  const std::string out =
      "From: Max Mustermann <EMAIL>\n"
      "Tel. <PHONE>, mobile <PHONE>\n"
      "Server <IP_ADDRESS> / <IP_ADDRESS> (dev box 192.168.1.20)\n"
      "Card <CREDIT_CARD>, SSN <US_SSN>, IBAN <IBAN>\n"
      "Release 2.36-9+deb12u4 on 2024-01-15 at 12:30, price $1,234.56, ISBN 978-3-16-148410-0\n";
  EXPECT_EQ(redact(in), out);
  EXPECT_EQ(counts_[PiiType::email], 1u);
  EXPECT_EQ(counts_[PiiType::phone], 2u);
  EXPECT_EQ(counts_[PiiType::ipv4], 1u);
  EXPECT_EQ(counts_[PiiType::ipv6], 1u);
  EXPECT_EQ(counts_[PiiType::credit_card], 1u);
  EXPECT_EQ(counts_[PiiType::us_ssn], 1u);
  EXPECT_EQ(counts_[PiiType::iban], 1u);
  EXPECT_EQ(counts_.total(), 8u);
}

TEST_F(Pii, Utf8AroundMatches) {
  expect("Grüße, 数据: 8.8.8.8 — naïve café", "Grüße, 数据: <IP_ADDRESS> — naïve café", PiiType::ipv4);
  expect("数据user@example.com数据", "数据<EMAIL>数据", PiiType::email);
  expect("Schöne Grüße — 📞 +44 20 7946 0958 🙂", "Schöne Grüße — 📞 <PHONE> 🙂", PiiType::phone);
  // A letter of a spaced script glued to the number makes it part of a word.
  expect_unchanged("Größe8.8.8.8 und ü555-123-4567");
  // Unicode digits are not digits here.
  expect_unchanged("٨.٨.٨.٨ and ５５５-１２３-４５６７");
}

TEST_F(Pii, InvalidUtf8IsCopiedThrough) {
  const std::string in = std::string("\xff\xfe 8.8.8.8 \xc3(") + " a@example.com \xe2\x82";
  const std::string out = std::string("\xff\xfe <IP_ADDRESS> \xc3(") + " <EMAIL> \xe2\x82";
  EXPECT_EQ(redact(in), out);
  EXPECT_EQ(counts_.total(), 2u);
}

TEST_F(Pii, OverlapsResolveToTheLongestMatch) {
  // "+1 123-45-6789" is a phone number containing an SSN-shaped part.
  expect("call +1 123-45-6789", "call <PHONE>", PiiType::phone);
  // The digits of an IBAN can look like a card number; the IBAN is longer.
  expect("DE38 4111 1111 1111 1111 56", "<IBAN>", PiiType::iban);
}

TEST_F(Pii, EmptyAndPlainText) {
  expect_unchanged("");
  expect_unchanged("Nothing to see here.");
}

TEST(PiiRedactor, CountsAccumulateAcrossCalls) {
  PiiRedactor r{PiiConfig{}};
  PiiCounts counts;
  EXPECT_EQ(r.redact("a@example.com", counts), "<EMAIL>");
  EXPECT_EQ(r.redact("b@example.com and 8.8.8.8", counts), "<EMAIL> and <IP_ADDRESS>");
  EXPECT_EQ(r.redact("nothing", counts), "nothing");
  EXPECT_EQ(counts[PiiType::email], 2u);
  EXPECT_EQ(counts[PiiType::ipv4], 1u);
  EXPECT_EQ(counts.total(), 3u);
}

TEST(PiiRedactor, OnlyConfiguredTypes) {
  PiiConfig config;
  config.types = {PiiType::email, PiiType::ipv6};
  PiiRedactor r(config);
  PiiCounts counts;
  EXPECT_EQ(r.redact("a@example.com 8.8.8.8 2001:4860:4860::8888 555-123-4567", counts),
            "<EMAIL> 8.8.8.8 <IP_ADDRESS> 555-123-4567");
  EXPECT_EQ(counts.total(), 2u);

  PiiRedactor none(PiiConfig{{}});
  EXPECT_EQ(none.redact("a@example.com 8.8.8.8", counts), "a@example.com 8.8.8.8");
  EXPECT_EQ(counts.total(), 2u);
}

TEST(PiiRedactor, Movable) {
  PiiRedactor a{PiiConfig{}};
  PiiRedactor b(std::move(a));
  PiiCounts counts;
  EXPECT_EQ(b.redact("8.8.8.8", counts), "<IP_ADDRESS>");
  PiiRedactor c{PiiConfig{{PiiType::email}}};
  c = std::move(b);
  EXPECT_EQ(c.redact("8.8.8.8", counts), "<IP_ADDRESS>");
  EXPECT_EQ(counts.total(), 2u);
}

}  // namespace
