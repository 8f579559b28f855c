// Outputs that appear under their final name only when complete.
//
// A tool writes into a hidden temporary next to the final path (".NAME.partial.HOST.PID") and
// commit() renames it into place. A tool that fails unwinds and removes the temporary; one that
// is killed outright leaves only the hidden ".partial" name, which nothing mistakes for a result
// and which the next run on that host removes once its process is gone. An existing output is
// never replaced without --overwrite, and with it the old output stays until the new one is
// complete: nothing already written is lost.
#pragma once

#include <string>

#include "dist/comm.hpp"

namespace bellows::io {

class SafeOutput {
 public:
  enum class Kind { file, directory };

  // Under MPI pass the communicator of the ranks writing into the output (collective: rank 0
  // creates and renames, the others write into the same temporary directory).
  SafeOutput(std::string final_path, Kind kind, bool overwrite, dist::Communicator* comm = nullptr);
  ~SafeOutput();
  SafeOutput(const SafeOutput&) = delete;
  SafeOutput& operator=(const SafeOutput&) = delete;

  // Where to write until commit().
  const std::string& temp_path() const { return temp_; }
  const std::string& final_path() const { return final_; }
  // Moves the finished output into place (collective under MPI).
  void commit();
  bool committed() const { return committed_; }

 private:
  std::string final_, temp_;
  Kind kind_;
  bool overwrite_;
  dist::Communicator* comm_;
  bool committed_ = false;
};

// Temporaries of outputs abandoned while a multi-rank job fails: removed by the failing rank
// only after the other ranks were told (dist::Context::abort), never during unwinding.
void remove_abandoned_outputs();

// Removes ".NAME.partial.HOST.PID" leftovers next to `final_path` whose process on this host is
// gone. Returns how many were removed.
int remove_stale_partials(const std::string& final_path);

}  // namespace bellows::io
