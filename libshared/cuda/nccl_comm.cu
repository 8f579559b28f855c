#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <algorithm>
#include <exception>
#include <chrono>
#include <mutex>

#include "core/error.hpp"
#include "cuda/nccl_comm.hpp"

namespace bellows::cuda {
namespace {

// The NCCL entry points we use, resolved from libnccl.so.2 once.
struct Nccl {
  const char* (*GetErrorString)(ncclResult_t);
  ncclResult_t (*GetUniqueId)(ncclUniqueId*);
  ncclResult_t (*CommInitRank)(ncclComm_t*, int, ncclUniqueId, int);
  ncclResult_t (*CommDestroy)(ncclComm_t);
  ncclResult_t (*CommSplit)(ncclComm_t, int, int, ncclComm_t*, ncclConfig_t*);
  ncclResult_t (*AllReduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*Reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*Broadcast)(const void*, void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*Send)(const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*Recv)(void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*GroupStart)();
  ncclResult_t (*GroupEnd)();
  std::string problem;  // non-empty: not loadable
};

const Nccl& nccl() {
  static Nccl n = [] {
    Nccl x{};
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      x.problem = std::string("cannot load libnccl.so.2 (") + dlerror() + ")";
      return x;
    }
    auto get = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && x.problem.empty()) x.problem = std::string("libnccl.so.2 lacks ") + name + " (NCCL older than 2.18?)";
    };
    get(x.GetErrorString, "ncclGetErrorString");
    get(x.GetUniqueId, "ncclGetUniqueId");
    get(x.CommInitRank, "ncclCommInitRank");
    get(x.CommDestroy, "ncclCommDestroy");
    get(x.CommSplit, "ncclCommSplit");
    get(x.AllReduce, "ncclAllReduce");
    get(x.Reduce, "ncclReduce");
    get(x.Broadcast, "ncclBroadcast");
    get(x.Send, "ncclSend");
    get(x.Recv, "ncclRecv");
    get(x.GroupStart, "ncclGroupStart");
    get(x.GroupEnd, "ncclGroupEnd");
    return x;
  }();
  return n;
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw RuntimeError(std::string("NCCL ") + what + ": " + nccl().GetErrorString(r));
}
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw RuntimeError(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

ncclRedOp_t to_nccl(dist::ReduceOp op) {
  switch (op) {
    case dist::ReduceOp::sum: return ncclSum;
    case dist::ReduceOp::max: return ncclMax;
    case dist::ReduceOp::min: return ncclMin;
  }
  return ncclSum;
}

class NcclCommunicator final : public dist::Communicator {
 public:
  NcclCommunicator(std::unique_ptr<dist::Communicator> host, ncclComm_t comm) : host_(std::move(host)), comm_(comm) {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  }
  ~NcclCommunicator() override {
    if (comm_) nccl().CommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  void barrier() override { host_->barrier(); }
  void broadcast(void* data, size_t bytes, int root) override { host_->broadcast(data, bytes, root); }
  void allreduce(int64_t* data, size_t n, dist::ReduceOp op) override { host_->allreduce(data, n, op); }
  void allreduce(double* data, size_t n, dist::ReduceOp op) override { host_->allreduce(data, n, op); }
  std::vector<std::string> gather(const std::string& mine, int root) override { return host_->gather(mine, root); }
  std::vector<std::string> allgather(const std::string& mine) override { return host_->allgather(mine); }
  std::vector<std::string> alltoallv(const std::vector<std::string>& send) override { return host_->alltoallv(send); }

  void allreduce(float* data, size_t n, dist::ReduceOp op) override {
    Timed t(*this);
    check(nccl().AllReduce(data, data, n, ncclFloat32, to_nccl(op), comm_, stream_), "all-reduce");
  }
  // Chunks of unequal size (ZeRO's): one reduce per owner, in one group, instead of NCCL's
  // reduce-scatter, which wants equal chunks.
  void reduce_scatter(float* data, const std::vector<size_t>& counts) override {
    BELLOWS_CHECK(counts.size() == size_t(size()), "reduce_scatter needs one count per rank");
    Timed t(*this);
    check(nccl().GroupStart(), "group");
    size_t at = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      if (counts[r]) check(nccl().Reduce(data + at, data + at, counts[r], ncclFloat32, ncclSum, int(r), comm_, stream_), "reduce");
      at += counts[r];
    }
    check(nccl().GroupEnd(), "group");
  }
  void allgather(float* data, const std::vector<size_t>& counts) override {
    BELLOWS_CHECK(counts.size() == size_t(size()), "allgather needs one count per rank");
    Timed t(*this);
    check(nccl().GroupStart(), "group");
    size_t at = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      if (counts[r]) check(nccl().Broadcast(data + at, data + at, counts[r], ncclFloat32, int(r), comm_, stream_), "broadcast");
      at += counts[r];
    }
    check(nccl().GroupEnd(), "group");
  }
  void send(const float* data, size_t n, int peer) override {
    if (peer < 0) return;
    Timed t(*this);
    check(nccl().Send(data, n, ncclFloat32, peer, comm_, stream_), "send");
  }
  void recv(float* data, size_t n, int peer) override {
    if (peer < 0) return;
    Timed t(*this);
    check(nccl().Recv(data, n, ncclFloat32, peer, comm_, stream_), "receive");
  }
  void sendrecv(const float* send_data, size_t send_n, int dest, float* recv_data, size_t recv_n, int source) override {
    if (dest < 0 && source < 0) return;
    Timed t(*this);
    check(nccl().GroupStart(), "group");
    if (dest >= 0) check(nccl().Send(send_data, send_n, ncclFloat32, dest, comm_, stream_), "send");
    if (source >= 0) check(nccl().Recv(recv_data, recv_n, ncclFloat32, source, comm_, stream_), "receive");
    check(nccl().GroupEnd(), "group");
  }
  std::unique_ptr<dist::Communicator> split(int color, int key) override {
    auto host = host_->split(color, key);
    ncclComm_t sub = nullptr;
    check(nccl().CommSplit(comm_, color, key, &sub, nullptr), "split");
    return std::make_unique<NcclCommunicator>(std::move(host), sub);
  }

 private:
  // Waits for the operation (synchronous semantics) and adds its time to the group's counter.
  struct Timed {
    // The backend's kernels run on a stream of its own: the data must be complete before NCCL,
    // on this communicator's stream, reads it. (Overlapping the two is the next step.)
    explicit Timed(NcclCommunicator& c) : c_(c), t0_(std::chrono::steady_clock::now()) {
      check(cudaDeviceSynchronize(), "device synchronize");
    }
    ~Timed() noexcept(false) {
      // While an NCCL error unwinds, a second exception from here would terminate the process.
      const cudaError_t e = cudaStreamSynchronize(c_.stream_);
      if (std::uncaught_exceptions() == 0) check(e, "stream synchronize");
      c_.tensor_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    }
    NcclCommunicator& c_;
    std::chrono::steady_clock::time_point t0_;
  };
  std::unique_ptr<dist::Communicator> host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::string nccl_unavailable_reason() {
  if (!nccl().problem.empty()) return nccl().problem;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  if (count == 0) return "no CUDA device";
  return "";
}

std::unique_ptr<dist::Communicator> make_nccl_communicator(std::unique_ptr<dist::Communicator> host) {
  // Every rank decides the same way before any collective, so a missing NCCL fails everywhere.
  const std::string why = nccl_unavailable_reason();
  const double bad = host->allreduce_value(why.empty() ? 0.0 : 1.0, dist::ReduceOp::max);
  if (bad != 0) throw RuntimeError("NCCL communicator: " + (why.empty() ? "another rank cannot use NCCL" : why));
  ncclUniqueId id{};
  if (host->rank() == 0) check(nccl().GetUniqueId(&id), "unique id");
  host->broadcast(&id, sizeof id, 0);
  ncclComm_t comm = nullptr;
  check(nccl().CommInitRank(&comm, host->size(), id, host->rank()), "init");
  return std::make_unique<NcclCommunicator>(std::move(host), comm);
}

}  // namespace bellows::cuda
