#include "io/zstd_filter.hpp"

#include <hdf5.h>
#include <zstd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.hpp"

namespace bellows::h5 {
namespace {

// HDF5 filter callback. Returns the number of valid bytes in *buf, or 0 on failure (HDF5 then
// fails the read/write with "filter returned failure").
size_t zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[], size_t nbytes,
                   size_t* buf_size, void** buf) {
  if (flags & H5Z_FLAG_REVERSE) {
    unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR) return 0;
    void* out = std::malloc(size > 0 ? size : 1);
    if (!out) return 0;
    size_t got = ZSTD_decompress(out, size, *buf, nbytes);
    if (ZSTD_isError(got) || got != size) {
      std::free(out);
      return 0;
    }
    std::free(*buf);
    *buf = out;
    *buf_size = size;
    return got;
  }
  int level = kZstdDefaultLevel;
  if (cd_nelmts > 0) {
    int32_t stored;
    std::memcpy(&stored, &cd_values[0], sizeof stored);  // negative levels are stored as two's complement
    level = stored;
  }
  level = std::max(ZSTD_minCLevel(), std::min(level, ZSTD_maxCLevel()));
  size_t bound = ZSTD_compressBound(nbytes);
  void* out = std::malloc(bound);
  if (!out) return 0;
  // ZSTD_compress writes the content size into the frame header, which readers rely on.
  size_t n = ZSTD_compress(out, bound, *buf, nbytes, level);
  if (ZSTD_isError(n)) {
    std::free(out);
    return 0;
  }
  std::free(*buf);
  *buf = out;
  *buf_size = bound;
  return n;
}

}  // namespace

void register_zstd_filter() {
  static std::once_flag once;
  std::call_once(once, [] {
    static const H5Z_class2_t cls = {
        H5Z_CLASS_T_VERS, static_cast<H5Z_filter_t>(kZstdFilterId), 1, 1, "zstd (bellows, in-process)",
        nullptr, nullptr, zstd_filter};
    if (H5Zregister(&cls) < 0) throw RuntimeError("cannot register the zstd HDF5 filter (id 32015)");
  });
}

}  // namespace bellows::h5
