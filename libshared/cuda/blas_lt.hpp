// GEMMs through cuBLASLt, loaded at run time (dlopen of libcublasLt.so.13/.12, as NCCL is), so
// the tools start on machines without CUDA libraries and the GPU bundle need not carry them.
//
// Column-major, as cuBLAS sees memory; the backend maps its row-major [rows, cols] buffers onto
// it (a row-major X[r, c] is the column-major X^T[c, r]).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

namespace bellows::cuda {

// What the GEMMs compute in: fp32 throughout; TF32 tensor cores; bf16 tensor cores (the fp32
// inputs rounded to bf16 inside cuBLAS, products accumulated in fp32). Outputs are fp32 always.
enum class GemmPrecision { fp32, tf32, bf16 };
GemmPrecision parse_gemm_precision(const std::string& s);  // UsageError naming --matmul-precision
const char* to_string(GemmPrecision p);

// Empty when cuBLASLt can be loaded here; otherwise why not.
std::string cublaslt_unavailable_reason();

class LtGemm {
 public:
  LtGemm(cudaStream_t stream, GemmPrecision precision);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // C[m,n] = alpha op(A) op(B) + beta C, column-major; op(A) is [m,k] (A is [k,m] when ta),
  // op(B) is [k,n] (B is [n,k] when tb).
  void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
            float beta, float* C, int ldc);

 private:
  struct Plan;  // descriptors and the chosen algorithm of one shape
  using Key = std::tuple<bool, bool, int, int, int, int, int, int, bool, uint32_t, uint32_t, uint32_t>;
  Plan& plan(const Key& key);
  cudaStream_t stream_;
  GemmPrecision precision_;
  void* handle_ = nullptr;     // cublasLtHandle_t
  void* workspace_ = nullptr;  // device
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan*> plans_;
};

}  // namespace bellows::cuda
