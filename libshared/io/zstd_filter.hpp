// zstd as HDF5 filter 32015, registered in-process, byte-compatible with the registered plugin
// that hdf5plugin ships: one zstd frame per chunk with the content size in its header, one
// cd_value (the level as int32). So h5py + hdf5plugin read our files without any plugin of ours.
#pragma once

namespace bellows::h5 {

constexpr int kZstdFilterId = 32015;
constexpr int kZstdDefaultLevel = 3;

// Registers the filter with the HDF5 library (idempotent; called by init_library()).
void register_zstd_filter();

}  // namespace bellows::h5
