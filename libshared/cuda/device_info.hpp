// Whether CUDA was compiled in, and what the runtime sees. Built from device_info.cu when the
// Makefile found nvcc (CUDA=1), from device_info_none.cpp otherwise.
#pragma once

#include <string>

namespace bellows {

bool cuda_compiled_in();

// One line for `--version`: "off (built without CUDA)", or the runtime version and the devices
// found, or why none could be used (e.g. no driver on a build machine).
std::string cuda_summary();

}  // namespace bellows
