// Regex-based PII redaction for training text: e-mail addresses, phone numbers, IPv4/IPv6
// addresses, credit-card numbers, US social security numbers and IBANs.
//
// Each detected item is replaced by a Presidio-style placeholder ("<EMAIL>", ...), as NeMo
// Curator does; counts per type are reported so a run can log how much it redacted. Detection
// favours precision over recall: web and code corpora are full of version numbers, dates,
// prices, ISBNs and hashes, and redacting those would damage far more text than the PII we
// would additionally catch. Every candidate a pattern finds must also pass a structural check
// (Luhn and issuer prefix, mod-97, SSN area rules, inet_pton, digit counts, context words).
//
// Deliberate limits (see the rules in pii.cpp for the exact forms):
//  - IP addresses are redacted only when globally routable (like datatrove): private, loopback,
//    link-local, multicast, reserved and documentation ranges identify nobody, and they fill
//    configuration examples. A dotted quad right after "version", "v.", "section", ... is a
//    version or section number, not an address.
//  - Phone numbers need a "+CC" prefix or a common national layout with separators
//    ((555) 123-4567, 555-123-4567, 030 1234567, 020 7946 0958, 01 23 45 67 89); a bare run of
//    digits is never a phone number, and neither is anything right after "ISBN" or "DOI".
//  - Only ASCII digits count as digits.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace bellows::text {

enum class PiiType { email, phone, ipv4, ipv6, credit_card, us_ssn, iban };
constexpr size_t kNumPiiTypes = 7;

// The name used on the command line and in reports: "email", "phone", "ipv4", "ipv6",
// "credit_card", "us_ssn", "iban".
const char* pii_name(PiiType type);
// What replaces a detected item. IPv4 and IPv6 share "<IP_ADDRESS>" so that the replaced text
// does not tell which kind of address was there.
const char* pii_placeholder(PiiType type);
// Parses a name as printed by pii_name(); throws UsageError naming --pii-types otherwise.
PiiType parse_pii_type(const std::string& name);

struct PiiConfig {
  std::set<PiiType> types = {PiiType::email,       PiiType::phone,  PiiType::ipv4, PiiType::ipv6,
                             PiiType::credit_card, PiiType::us_ssn, PiiType::iban};
};

// Items redacted, per type.
struct PiiCounts {
  std::array<uint64_t, kNumPiiTypes> n{};
  uint64_t& operator[](PiiType type) { return n[static_cast<size_t>(type)]; }
  uint64_t operator[](PiiType type) const { return n[static_cast<size_t>(type)]; }
  uint64_t total() const;
};

// Finds and replaces PII in UTF-8 text. The patterns are compiled (and JIT-compiled where the
// platform allows) once, at construction; an instance also owns the scratch space its matches
// use, so one instance must not be used from two threads at once: give each worker thread its
// own redactor. Text that is not valid UTF-8 is handled: invalid bytes never match a pattern
// and are copied through unchanged.
class PiiRedactor {
 public:
  explicit PiiRedactor(const PiiConfig& config);
  ~PiiRedactor();
  PiiRedactor(PiiRedactor&&) noexcept;
  PiiRedactor& operator=(PiiRedactor&&) noexcept;
  PiiRedactor(const PiiRedactor&) = delete;
  PiiRedactor& operator=(const PiiRedactor&) = delete;

  // Returns the text with every detected item replaced by its placeholder and adds the number
  // of items replaced to `counts`. Where items of different types overlap, the longest wins
  // (the earlier one on a tie), so each byte of the input is redacted at most once.
  std::string redact(std::string_view utf8_text, PiiCounts& counts);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bellows::text
