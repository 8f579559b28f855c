#include "dist/context.hpp"

#include <mpi.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.hpp"
#include "dist/mpi_comm.hpp"

extern char** environ;

namespace bellows::dist {
namespace {

std::unique_ptr<Context> g_context;

std::string get(const Env& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

int get_int(const Env& env, const char* key, int fallback) {
  std::string v = get(env, key);
  if (v.empty()) return fallback;
  try {
    return std::stoi(v);
  } catch (...) {
    return fallback;
  }
}

}  // namespace

const char* launcher_name(Launcher l) {
  switch (l) {
    case Launcher::single: return "single";
    case Launcher::mpirun: return "mpirun";
    case Launcher::srun: return "srun";
  }
  return "?";
}

Env current_env() {
  Env env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

LaunchInfo detect_launch(const Env& env) {
  LaunchInfo li;
  li.slurm_job_id = get(env, "SLURM_JOB_ID");
  li.slurm_step_id = get(env, "SLURM_STEP_ID");
  li.slurm_nodelist = get(env, "SLURM_JOB_NODELIST");
  li.restart_count = get_int(env, "SLURM_RESTART_COUNT", 0);
  // mpirun (Open MPI's ORTE/PRRTE, or MPICH's hydra) announces the world in these variables.
  // They win over SLURM_*: mpirun inside an allocation still inherits the batch step's SLURM_*.
  if (!get(env, "OMPI_COMM_WORLD_SIZE").empty()) {
    li.launcher = Launcher::mpirun;
    li.env_rank = get_int(env, "OMPI_COMM_WORLD_RANK", 0);
    li.env_size = get_int(env, "OMPI_COMM_WORLD_SIZE", 1);
    return li;
  }
  if (!get(env, "PMI_SIZE").empty() && get(env, "SLURM_STEP_ID").empty()) {
    li.launcher = Launcher::mpirun;
    li.env_rank = get_int(env, "PMI_RANK", 0);
    li.env_size = get_int(env, "PMI_SIZE", 1);
    return li;
  }
  // srun sets SLURM_STEP_ID for every step it launches; the batch script itself has none.
  if (!li.slurm_step_id.empty() && !get(env, "SLURM_PROCID").empty()) {
    li.env_rank = get_int(env, "SLURM_PROCID", 0);
    li.env_size = get_int(env, "SLURM_STEP_NUM_TASKS", get_int(env, "SLURM_NTASKS", 1));
    bool has_pmi = !get(env, "PMIX_RANK").empty() || !get(env, "PMI_RANK").empty() ||
                   !get(env, "PMI_FD").empty();
    if (has_pmi) {
      li.launcher = Launcher::srun;
    } else if (li.env_size > 1) {
      // Without PMI every task would come up as its own 1-rank world and work would be done N
      // times over; refuse instead of silently running N copies.
      li.launcher = Launcher::srun;
      li.problem = "started by srun with " + std::to_string(li.env_size) +
                   " tasks but without a PMI plugin: use `srun --mpi=pmix` (see `srun --mpi=list`)";
    }
    // One srun task without PMI: a plain single process.
  }
  return li;
}

std::string short_hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  std::string h = buf;
  return h.substr(0, h.find('.'));
}

std::string Placement::to_line(const LaunchInfo& li) const {
  std::ostringstream os;
  os << "rank=" << rank << " size=" << size << " local_rank=" << local_rank << " local_size=" << local_size
     << " node=" << node << " node_index=" << node_index << " num_nodes=" << num_nodes
     << " launcher=" << launcher_name(li.launcher)
     << " slurm_job=" << (li.slurm_job_id.empty() ? "-" : li.slurm_job_id) << " restart=" << li.restart_count;
  return os.str();
}

bool Context::initialized() { return g_context != nullptr; }

Context& Context::get() {
  BELLOWS_CHECK(g_context != nullptr, "dist::Context used before init");
  return *g_context;
}

Context& Context::init(int* argc, char*** argv) {
  BELLOWS_CHECK(g_context == nullptr, "dist::Context initialised twice");
  g_context.reset(new Context());
  Context& c = *g_context;
  c.launch_ = detect_launch(current_env());
  if (!c.launch_.problem.empty()) throw UsageError(c.launch_.problem);
  c.placement_.node = short_hostname();
  if (c.launch_.launcher == Launcher::single) {
    c.world_ = std::make_unique<SelfCommunicator>();
    c.local_ = std::make_unique<SelfCommunicator>();
    return c;
  }
  int provided = 0;
  // FUNNELED: only the main thread calls MPI; OpenMP threads compute in between.
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  c.mpi_ = true;
  auto world = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
  MPI_Comm shared = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world->rank(), MPI_INFO_NULL, &shared);
  auto local = std::make_unique<MpiCommunicator>(shared);
  // Node index: number the nodes by their lowest rank, through a communicator of node leaders
  // (ranks that are not leaders get MPI_COMM_NULL and learn the numbers from their leader).
  MPI_Comm leaders = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, local->rank() == 0 ? 0 : MPI_UNDEFINED, world->rank(), &leaders);
  int64_t node_info[2] = {0, 0};  // node index, number of nodes
  if (leaders != MPI_COMM_NULL) {
    int r = 0, n = 0;
    MPI_Comm_rank(leaders, &r);
    MPI_Comm_size(leaders, &n);
    node_info[0] = r;
    node_info[1] = n;
    MPI_Comm_free(&leaders);
  }
  local->broadcast(node_info, sizeof node_info, 0);
  Placement& p = c.placement_;
  p.rank = world->rank();
  p.size = world->size();
  p.local_rank = local->rank();
  p.local_size = local->size();
  p.node_index = static_cast<int>(node_info[0]);
  p.num_nodes = static_cast<int>(node_info[1]);
  c.world_ = std::move(world);
  c.local_ = std::move(local);
  return c;
}

std::vector<std::string> Context::gather_placement_lines() {
  return world_->gather(placement_.to_line(launch_), 0);
}

namespace {
constexpr int kAbortTag = 0x7AB0;  // point-to-point tag of the "I am failing" notice
}  // namespace

void Context::abort(int code, const std::string& message, const std::function<void()>& cleanup,
                    bool same_on_every_rank) {
  bool multi = mpi_ && size() > 1;
  bool announced_elsewhere = false;
  if (multi) {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, kAbortTag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    for (int waited = 0; !flag && same_on_every_rank && rank() != 0 && waited < 100; ++waited) {
      struct timespec ts{0, 10 * 1000 * 1000};
      nanosleep(&ts, nullptr);
      MPI_Iprobe(0, kAbortTag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    }
    announced_elsewhere = flag != 0;
    if (!announced_elsewhere) {
      static int notice = 1;
      for (int r = 0; r < size(); ++r) {
        if (r == rank()) continue;
        MPI_Request req;
        MPI_Isend(&notice, 1, MPI_INT, r, kAbortTag, MPI_COMM_WORLD, &req);
        MPI_Request_free(&req);
      }
    }
  }
  if (!announced_elsewhere) {
    // Written straight to stderr, unfiltered: the one line that says why the job stopped.
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
  }
  if (multi && !announced_elsewhere) {
    // Let the notices arrive before removing files the other ranks may be using.
    struct timespec ts{0, 200 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  if (cleanup) cleanup();
  if (multi) MPI_Abort(MPI_COMM_WORLD, code);
  finalize();
  std::exit(code);
}

void Context::finalize() {
  if (!mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  local_.reset();
  world_.reset();
  MPI_Finalize();
  mpi_ = false;
}

}  // namespace bellows::dist
