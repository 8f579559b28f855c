// Error kinds shared by every tool, and the exit code each one maps to.
//
// Tools throw; the harness in cli/tool.cpp catches and turns the exception into one line on
// stderr plus the documented exit code (README "Exit codes"). Messages name the file, flag or
// record that is wrong, so a user can act on a single line in a SLURM log.
#pragma once

#include <stdexcept>
#include <string>

namespace bellows {

// Documented exit codes. Keep README.md's table in step with this list.
enum ExitCode : int {
  kExitOk = 0,
  kExitRuntime = 1,      // bad input data, corrupt file, I/O failure
  kExitUsage = 2,        // unknown flag, bad value, missing input, bad config file, output exists
  kExitInternal = 70,    // a bug in bellows (an invariant failed); message carries source file:line
  kExitCheckpointed = 75, // training stopped on SIGTERM/SIGUSR1 after saving a checkpoint: rerun with --resume auto
  kExitInterrupted = 130 // SIGINT/SIGTERM: partial outputs were removed (128 + signal for others)
};

// A problem with how the tool was called: exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A problem with the data or the filesystem: exit code 1. The message must name the file
// (and the record or line where it applies).
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An invariant of our own code failed: exit code 70.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// The process was asked to stop (SIGINT/SIGTERM); thrown from cancellation points.
class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signo);
  int signal_number() const { return signo_; }

 private:
  int signo_;
};

[[noreturn]] void throw_internal(const char* file, int line, const std::string& what);

}  // namespace bellows

// Invariant check that carries the source location (llm.c style). Only for conditions that
// indicate a bug; bad user input gets UsageError/RuntimeError with a message naming the input.
#define BELLOWS_CHECK(cond, msg)                                                    \
  do {                                                                              \
    if (!(cond)) ::bellows::throw_internal(__FILE__, __LINE__, std::string("check failed: " #cond ": ") + (msg)); \
  } while (0)
