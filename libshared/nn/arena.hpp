// Backend memory for the CPU backends: 64-byte aligned blocks (whole cache lines, full-width
// vector loads), zeroed, kept until the arena goes. Allocation happens while a model is set up,
// never inside a training step.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace bellows::nn {

class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() {
    for (void* p : blocks_) std::free(p);
  }
  void* alloc_bytes(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, rounded);
    blocks_.push_back(p);
    bytes_ += rounded;
    return p;
  }
  size_t bytes() const { return bytes_; }

 private:
  std::vector<void*> blocks_;
  size_t bytes_ = 0;
};

}  // namespace bellows::nn
