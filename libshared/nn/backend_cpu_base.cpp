// The CPU kernels for any x86-64 (SSE2).
#include "nn/backend_cpu_variants.hpp"
#define BELLOWS_CPU_VARIANT make_cpu_backend_base
#include "nn/backend_cpu_impl.hpp"
