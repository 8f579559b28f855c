// The CPU backend built for two instruction sets; make_cpu_backend chooses at run time.
#pragma once

#include <memory>

#include "nn/backend.hpp"

namespace bellows::nn {
std::unique_ptr<Backend> make_cpu_backend_base(int threads);
std::unique_ptr<Backend> make_cpu_backend_v3(int threads);
}  // namespace bellows::nn
