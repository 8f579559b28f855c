#include "core/error.hpp"

#include <cstring>

namespace bellows {

Interrupted::Interrupted(int signo)
    : std::runtime_error(std::string("interrupted by signal ") + ::strsignal(signo)), signo_(signo) {}

void throw_internal(const char* file, int line, const std::string& what) {
  throw InternalError(std::string(file) + ":" + std::to_string(line) + ": " + what);
}

}  // namespace bellows
