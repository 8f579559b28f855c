// The CUDA backend: the Backend's ops on one GPU. GEMMs through cuBLASLt (fp32, TF32 or bf16
// tensor cores with fp32 accumulation), flash-style attention (cuda/attention.hpp), the other
// ops as kernels of their own; buffers, master weights and optimizer state in fp32. Every
// reduction runs in a fixed order (no atomics), so a rerun gives the same bits.
//
// Built from backend_cuda.cu when the Makefile found nvcc, from backend_cuda_none.cpp
// otherwise, where asking for it is an error that says so.
#pragma once

#include <memory>
#include <string>

#include "nn/backend.hpp"

namespace bellows::cuda {

// Visible devices (0 when CUDA is not compiled in or no driver/device is usable).
int device_count();
// Empty when a CUDA backend can be made here; otherwise why not.
std::string backend_unavailable_reason();

// Makes `device` the calling thread's current GPU (what NCCL and the backend then use).
void use_device(int device);

// On device `device` (cudaSetDevice for the calling thread); matmul_precision: fp32 | tf32 | bf16.
std::unique_ptr<nn::Backend> make_cuda_backend(int device, const std::string& matmul_precision);

// "NVIDIA H100 80GB HBM3 (sm_90, 81559 MiB)" for the logs.
std::string device_description(int device);

}  // namespace bellows::cuda
