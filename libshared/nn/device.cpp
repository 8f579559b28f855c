#include "nn/device.hpp"

#include "core/error.hpp"
#include "cuda/backend_cuda.hpp"

namespace bellows::nn {

std::string resolve_device(const DeviceOptions& o) {
  if (o.device != "auto" && o.device != "cpu" && o.device != "cuda")
    throw UsageError("--device: '" + o.device + "' is not one of auto, cpu, cuda");
  if (o.backend != "cpu" && o.backend != "ref")
    throw UsageError("--backend: '" + o.backend + "' is not a CPU backend (cpu, ref); GPUs are chosen with --device");
  std::string d = o.device;
  if (d == "auto") d = o.backend == "cpu" && cuda::backend_unavailable_reason().empty() ? "cuda" : "cpu";
  if (d == "cuda" && o.backend != "cpu") throw UsageError("--backend ref runs on the CPU only (not with --device cuda)");
  if (d == "cpu" && !o.matmul_precision.empty() && o.matmul_precision != "fp32")
    throw UsageError("--matmul-precision " + o.matmul_precision + ": the CPU backends compute in fp32 only (" +
                     "tf32 and bf16 are CUDA's)");
  if (d == "cuda") {
    const std::string why = cuda::backend_unavailable_reason();
    if (!why.empty()) throw UsageError("--device cuda: " + why);
  }
  return d;
}

int cuda_device_of(const DeviceOptions& o) {
  const int n = cuda::device_count();
  if (n <= 0) throw UsageError("--device cuda: " + cuda::backend_unavailable_reason());
  return o.local_rank % n;
}

std::unique_ptr<Backend> make_device_backend(const DeviceOptions& o, std::string* where) {
  const std::string d = resolve_device(o);
  if (d == "cpu") {
    auto be = make_backend(o.backend, o.threads);
    if (where) *where = "cpu";
    return be;
  }
  const int dev = cuda_device_of(o);
  auto be = cuda::make_cuda_backend(dev, o.matmul_precision.empty() ? "bf16" : o.matmul_precision);
  if (where) *where = "cuda:" + std::to_string(dev) + " " + cuda::device_description(dev);
  return be;
}

}  // namespace bellows::nn
