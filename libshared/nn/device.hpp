// Which backend a tool runs on, from its flags: --device auto|cpu|cuda, --backend cpu|ref (the CPU
// implementation), --threads (CPU), --matmul-precision fp32|tf32|bf16 (CUDA GEMMs).
//
// One rank per GPU: a rank takes device local_rank % (visible devices), so under srun with
// --gpus-per-task (one visible device each) every rank takes its own device 0, and under mpirun
// on a node of 8 GPUs local ranks 0..7 take devices 0..7. CUDA_VISIBLE_DEVICES is honoured by
// the CUDA runtime itself.
#pragma once

#include <memory>
#include <string>

#include "nn/backend.hpp"

namespace bellows::nn {

struct DeviceOptions {
  std::string device = "auto";  // auto: cuda when a GPU can be used here, else cpu
  std::string backend = "cpu";  // the CPU implementation: cpu | ref
  int threads = 0;              // CPU threads (0: all cores)
  std::string matmul_precision; // "" : bf16 on CUDA; on the CPU only fp32 exists
  int local_rank = 0;           // this rank's index among the ranks of its node
};

// Checks the combination (UsageError naming the flag) and resolves "auto": the device that
// make_device_backend will use, "cpu" or "cuda".
std::string resolve_device(const DeviceOptions& o);

// The GPU a rank of this local rank uses (local_rank mod visible devices); needs a usable GPU.
int cuda_device_of(const DeviceOptions& o);

// The backend; `where` (optional) gets where it runs, for the log: "cpu", or
// "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 81559 MiB)".
std::unique_ptr<Backend> make_device_backend(const DeviceOptions& o, std::string* where = nullptr);

}  // namespace bellows::nn
