// Packing plain values and strings into a byte string and back: the wire format of the
// all-to-all exchanges between ranks (same binary on every rank, so native layout is fine).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/error.hpp"

namespace bellows {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(std::string_view s) {
    put(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ == in_.size(); }
  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    BELLOWS_CHECK(pos_ + sizeof(T) <= in_.size(), "message shorter than its content");
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string get_string() {
    auto n = get<uint32_t>();
    BELLOWS_CHECK(pos_ + n <= in_.size(), "message shorter than its content");
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace bellows
