// The CPU kernels again, compiled with -march=x86-64-v3 (the Makefile says so): AVX2 and FMA.
#include "nn/backend_cpu_variants.hpp"
#define BELLOWS_CPU_VARIANT make_cpu_backend_v3
#include "nn/backend_cpu_impl.hpp"
