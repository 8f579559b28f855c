#include "core/error.hpp"
#include "cuda/backend_cuda.hpp"

namespace bellows::cuda {

int device_count() { return 0; }
std::string backend_unavailable_reason() { return "this build has no CUDA (nvcc was not found when it was built)"; }
std::unique_ptr<nn::Backend> make_cuda_backend(int, const std::string&) {
  throw UsageError("--device cuda: " + backend_unavailable_reason());
}
std::string device_description(int) { return "none"; }
void use_device(int) { throw UsageError("--device cuda: " + backend_unavailable_reason()); }

}  // namespace bellows::cuda
