#include <cublasLt.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/error.hpp"
#include "cuda/blas_lt.hpp"

namespace bellows::cuda {
namespace {

// The cuBLASLt entry points we use, resolved once. decltype keeps their signatures the
// header's, so a mismatch is a compile error rather than a crash.
struct Lt {
  decltype(&cublasLtCreate) Create;
  decltype(&cublasLtDestroy) Destroy;
  decltype(&cublasLtGetStatusString) StatusString;
  decltype(&cublasLtMatmulDescCreate) DescCreate;
  decltype(&cublasLtMatmulDescDestroy) DescDestroy;
  decltype(&cublasLtMatmulDescSetAttribute) DescSet;
  decltype(&cublasLtMatrixLayoutCreate) LayoutCreate;
  decltype(&cublasLtMatrixLayoutDestroy) LayoutDestroy;
  decltype(&cublasLtMatmulPreferenceCreate) PrefCreate;
  decltype(&cublasLtMatmulPreferenceDestroy) PrefDestroy;
  decltype(&cublasLtMatmulPreferenceSetAttribute) PrefSet;
  decltype(&cublasLtMatmulAlgoGetHeuristic) Heuristic;
  decltype(&cublasLtMatmul) Matmul;
  std::string problem;  // non-empty: not loadable
};

const Lt& lt() {
  static Lt x = [] {
    Lt l{};
    void* lib = nullptr;
    std::string tried;
    for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
      lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
      tried += std::string(tried.empty() ? "" : "; ") + dlerror();
    }
    if (!lib) {
      l.problem = "cannot load cuBLASLt (" + tried + ")";
      return l;
    }
    auto get = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && l.problem.empty()) l.problem = std::string("cuBLASLt lacks ") + name;
    };
    get(l.Create, "cublasLtCreate");
    get(l.Destroy, "cublasLtDestroy");
    get(l.StatusString, "cublasLtGetStatusString");
    get(l.DescCreate, "cublasLtMatmulDescCreate");
    get(l.DescDestroy, "cublasLtMatmulDescDestroy");
    get(l.DescSet, "cublasLtMatmulDescSetAttribute");
    get(l.LayoutCreate, "cublasLtMatrixLayoutCreate");
    get(l.LayoutDestroy, "cublasLtMatrixLayoutDestroy");
    get(l.PrefCreate, "cublasLtMatmulPreferenceCreate");
    get(l.PrefDestroy, "cublasLtMatmulPreferenceDestroy");
    get(l.PrefSet, "cublasLtMatmulPreferenceSetAttribute");
    get(l.Heuristic, "cublasLtMatmulAlgoGetHeuristic");
    get(l.Matmul, "cublasLtMatmul");
    return l;
  }();
  return x;
}

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw RuntimeError(std::string("cuBLASLt ") + what + ": " + lt().StatusString(s));
}
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw RuntimeError(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

cublasComputeType_t compute_type(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::fp32: return CUBLAS_COMPUTE_32F;
    case GemmPrecision::tf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case GemmPrecision::bf16: return CUBLAS_COMPUTE_32F_FAST_16BF;
  }
  return CUBLAS_COMPUTE_32F;
}

}  // namespace

GemmPrecision parse_gemm_precision(const std::string& s) {
  if (s == "fp32") return GemmPrecision::fp32;
  if (s == "tf32") return GemmPrecision::tf32;
  if (s == "bf16") return GemmPrecision::bf16;
  throw UsageError("--matmul-precision: '" + s + "' is not one of fp32, tf32, bf16");
}

const char* to_string(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::fp32: return "fp32";
    case GemmPrecision::tf32: return "tf32";
    case GemmPrecision::bf16: return "bf16";
  }
  return "?";
}

std::string cublaslt_unavailable_reason() { return lt().problem; }

struct LtGemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

LtGemm::LtGemm(cudaStream_t stream, GemmPrecision precision) : stream_(stream), precision_(precision) {
  if (!lt().problem.empty()) throw RuntimeError(lt().problem);
  cublasLtHandle_t h = nullptr;
  check(lt().Create(&h), "create");
  handle_ = h;
  workspace_bytes_ = size_t(32) << 20;  // what cuBLAS recommends for Hopper
  check(cudaMalloc(&workspace_, workspace_bytes_), "workspace allocation");
}

LtGemm::~LtGemm() {
  for (auto& [key, p] : plans_) {
    lt().LayoutDestroy(p->a);
    lt().LayoutDestroy(p->b);
    lt().LayoutDestroy(p->c);
    lt().DescDestroy(p->desc);
    delete p;
  }
  if (workspace_) cudaFree(workspace_);
  if (handle_) lt().Destroy(static_cast<cublasLtHandle_t>(handle_));
}

// A shape's descriptors and algorithm are made once: a training step calls the same few shapes
// every time, and the heuristic query costs more than a small GEMM.
LtGemm::Plan& LtGemm::plan(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  const auto [ta, tb, m, n, k, lda, ldb, ldc, accumulate, align_a, align_b, align_c] = key;
  auto* p = new Plan;
  check(lt().DescCreate(&p->desc, compute_type(precision_), CUDA_R_32F), "descriptor");
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(lt().DescSet(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa), "transa");
  check(lt().DescSet(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb), "transb");
  check(lt().LayoutCreate(&p->a, CUDA_R_32F, ta ? k : m, ta ? m : k, lda), "layout A");
  check(lt().LayoutCreate(&p->b, CUDA_R_32F, tb ? n : k, tb ? k : n, ldb), "layout B");
  check(lt().LayoutCreate(&p->c, CUDA_R_32F, m, n, ldc), "layout C");
  cublasLtMatmulPreference_t pref = nullptr;
  check(lt().PrefCreate(&pref), "preference");
  check(lt().PrefSet(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_, sizeof workspace_bytes_),
        "workspace preference");
  // The heuristic otherwise assumes 256-byte aligned matrices; a weight inside the flat parameter
  // buffer may sit at any float offset.
  const uint32_t al[3] = {align_a, align_b, align_c};
  check(lt().PrefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], sizeof al[0]), "alignment A");
  check(lt().PrefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], sizeof al[1]), "alignment B");
  check(lt().PrefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], sizeof al[2]), "alignment C");
  check(lt().PrefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[2], sizeof al[2]), "alignment D");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s = lt().Heuristic(static_cast<cublasLtHandle_t>(handle_), p->desc, p->a, p->b, p->c, p->c,
                                          pref, 1, &result, &found);
  lt().PrefDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    delete p;
    throw RuntimeError("cuBLASLt has no algorithm for a " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                       std::to_string(k) + " GEMM (" + to_string(precision_) + ")");
  }
  p->algo = result.algo;
  plans_[key] = p;
  return *p;
}

void LtGemm::gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
                  float beta, float* C, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty product: C = beta C (cuBLASLt may refuse empty layouts)
    if (beta == 0.0f) check(cudaMemset2DAsync(C, size_t(ldc) * sizeof(float), 0, size_t(m) * sizeof(float), size_t(n), stream_), "zero");
    else if (beta != 1.0f) throw RuntimeError("cuBLASLt: an empty GEMM with beta other than 0 or 1 is not supported");
    return;
  }
  // The largest power of two (up to 256) dividing each address.
  auto align = [](const void* ptr) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
    return uint32_t(std::min<uintptr_t>(256, a & (~a + 1)));
  };
  Plan& p = plan(Key{ta, tb, m, n, k, lda, ldb, ldc, beta != 0.0f, align(A), align(B), align(C)});
  check(lt().Matmul(static_cast<cublasLtHandle_t>(handle_), p.desc, &alpha, A, p.a, B, p.b, &beta, C, p.c, C, p.c,
                    &p.algo, workspace_, workspace_bytes_, stream_),
        "matmul");
}

}  // namespace bellows::cuda
