// The process context: who am I, how many of us, on which node, launched by what.
//
// The same binary runs as a single process, under mpirun, or under srun. MPI is initialised only
// when a launcher started us (a plain `tool --help` never pays for MPI start-up). Placement
// (node, local rank, node index) comes from MPI_Comm_split_type(SHARED), i.e. from what MPI sees,
// not from environment variables that differ between launchers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dist/comm.hpp"

namespace bellows::dist {

enum class Launcher { single, mpirun, srun };
const char* launcher_name(Launcher l);

// How we were started, judged from the environment alone (pure; unit-tested).
struct LaunchInfo {
  Launcher launcher = Launcher::single;
  int env_rank = 0;            // rank as the launcher announced it (0 when single)
  int env_size = 1;
  std::string slurm_job_id;    // "" outside SLURM
  std::string slurm_step_id;
  std::string slurm_nodelist;
  int restart_count = 0;       // SLURM_RESTART_COUNT: how often the job was requeued
  std::string problem;         // non-empty: launched in a way MPI cannot wire up (why)
};
using Env = std::map<std::string, std::string>;
LaunchInfo detect_launch(const Env& env);
Env current_env();

struct Placement {
  int rank = 0, size = 1;
  int local_rank = 0, local_size = 1;  // among the ranks on this node
  int node_index = 0, num_nodes = 1;   // nodes numbered by their lowest rank
  std::string node;                    // short host name
  std::string to_line(const LaunchInfo& li) const;  // "rank=0 size=4 local_rank=0 ..."
};

class Context {
 public:
  // Initialises MPI when a launcher started us. Throws UsageError for launches MPI cannot use.
  static Context& init(int* argc, char*** argv);
  static Context& get();  // after init
  static bool initialized();

  const LaunchInfo& launch() const { return launch_; }
  const Placement& placement() const { return placement_; }
  int rank() const { return placement_.rank; }
  int size() const { return placement_.size; }
  bool uses_mpi() const { return mpi_; }

  Communicator& world() { return *world_; }
  Communicator& node_local() { return *local_; }

  // Rank 0 gets every rank's placement line, in rank order; other ranks an empty vector.
  std::vector<std::string> gather_placement_lines();

  // Stops the whole job after a failure on this rank. So that the job reports one error, not a
  // cascade: if no other rank announced its failure first, tells every rank, prints `message`
  // (one line, already formatted, never filtered) and waits a moment for the notices to land;
  // a rank that finds a notice waiting stays quiet. Then runs `cleanup` (removal of partial
  // outputs: deferred until the other ranks know, so that they do not trip over the missing
  // files and report that instead) and aborts every rank with `code`. Single process: prints,
  // cleans up and exits.
  // same_on_every_rank: the failure is one every rank meets at once (a usage error found after
  // start-up): rank 0 speaks for all, the others wait up to a second for its notice first.
  [[noreturn]] void abort(int code, const std::string& message, const std::function<void()>& cleanup = nullptr,
                          bool same_on_every_rank = false);
  void finalize();

 private:
  Context() = default;
  LaunchInfo launch_;
  Placement placement_;
  bool mpi_ = false;
  std::unique_ptr<Communicator> world_, local_;
};

// Short host name (up to the first dot), as SLURM names nodes.
std::string short_hostname();

}  // namespace bellows::dist
