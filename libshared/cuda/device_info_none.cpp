#include "cuda/device_info.hpp"

namespace bellows {

bool cuda_compiled_in() { return false; }

std::string cuda_summary() { return "off (built without CUDA; rebuild with nvcc on PATH or CUDA=1)"; }

}  // namespace bellows
