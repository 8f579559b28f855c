// What this build is: version, git revision, and which optional parts were compiled in.
#pragma once

#include <string>

namespace bellows {

struct BuildInfo {
  std::string version;    // semantic version of the suite
  std::string git_hash;   // short hash of the commit built, "+dirty" when the tree had changes
  bool cuda = false;      // CUDA parts compiled in (nvcc found at build time, CUDA!=0)
  std::string mpi;        // MPI library version string (first line)
  std::string hdf5;       // HDF5 library version, and whether it is the parallel build
  std::string zstd;       // zstd library version
};

BuildInfo build_info();

// The lines `--version` prints before the per-rank placement lines.
std::string version_text(const std::string& tool);

}  // namespace bellows
