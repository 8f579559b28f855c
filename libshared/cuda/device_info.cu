#include <cuda_runtime.h>

#include <string>

#include "cuda/device_info.hpp"

namespace bellows {

bool cuda_compiled_in() { return true; }

std::string cuda_summary() {
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  std::string s = "on (CUDA runtime " + std::to_string(runtime / 1000) + "." +
                  std::to_string((runtime % 1000) / 10) + ")";
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    // Normal on build machines without a GPU: say so instead of failing --version.
    return s + ", no usable device: " + cudaGetErrorString(err);
  }
  s += ", " + std::to_string(count) + " device(s)";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) == cudaSuccess) {
      s += std::string("; ") + std::to_string(i) + ": " + p.name + " sm_" + std::to_string(p.major) +
           std::to_string(p.minor) + " " + std::to_string(p.totalGlobalMem >> 20) + " MiB";
    }
  }
  return s;
}

}  // namespace bellows
