// The communicator interface: what layers and tools use to talk to other ranks. Layers are
// handed a Communicator (a process group) and never reach for MPI_COMM_WORLD themselves, so the
// same code runs single-process, over MPI (CPU) and later over NCCL (GPU).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bellows::dist {

enum class ReduceOp { sum, max, min };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void allreduce(int64_t* data, size_t n, ReduceOp op) = 0;
  virtual void allreduce(double* data, size_t n, ReduceOp op) = 0;
  // Root receives every rank's string in rank order; other ranks receive an empty vector.
  virtual std::vector<std::string> gather(const std::string& mine, int root) = 0;
  virtual std::vector<std::string> allgather(const std::string& mine) = 0;
  // Personalised exchange: send[r] goes to rank r; returns what each rank sent to this one.
  virtual std::vector<std::string> alltoallv(const std::vector<std::string>& send) = 0;

  // --- tensors: float buffers in the memory of the backend the group serves (host memory for
  // MPI; device memory for NCCL). These are what training moves. ---
  virtual void allreduce(float* data, size_t n, ReduceOp op) = 0;
  // data holds size() chunks, chunk r of counts[r] floats, back to back. Afterwards this rank's
  // chunk holds the sum of everyone's chunk; the other chunks are left undefined.
  virtual void reduce_scatter(float* data, const std::vector<size_t>& counts) = 0;
  // data holds size() chunks as above; each rank's own chunk is sent to all, so that afterwards
  // every chunk holds its owner's values.
  virtual void allgather(float* data, const std::vector<size_t>& counts) = 0;
  // Point to point, in the order posted between a pair of ranks. A peer of -1 is no peer (the
  // half of a sendrecv at a pipeline's end does nothing).
  virtual void send(const float* data, size_t n, int peer) = 0;
  virtual void recv(float* data, size_t n, int peer) = 0;
  // Send and receive at once (to and from possibly different peers): what a pipeline stage does
  // when it hands on an activation while taking a gradient, without the deadlock two blocking
  // sends facing each other would give.
  virtual void sendrecv(const float* send_data, size_t send_n, int dest, float* recv_data, size_t recv_n, int source) = 0;

  // Ranks with the same color form a new group, ordered by key (MPI_Comm_split). Collective.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // Seconds spent inside the tensor operations above since the last reset: the time a rank
  // waited for and moved data in this group (step metrics split it by group).
  double tensor_seconds() const { return tensor_seconds_; }
  void reset_tensor_seconds() { tensor_seconds_ = 0; }

  // Convenience wrappers over the primitives above.
  std::string broadcast_string(const std::string& s, int root);
  int64_t allreduce_value(int64_t v, ReduceOp op);
  double allreduce_value(double v, ReduceOp op);

 protected:
  double tensor_seconds_ = 0;
};

// The group of one process: every collective is the identity.
class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  void broadcast(void*, size_t, int) override {}
  void allreduce(int64_t*, size_t, ReduceOp) override {}
  void allreduce(double*, size_t, ReduceOp) override {}
  std::vector<std::string> gather(const std::string& mine, int) override { return {mine}; }
  std::vector<std::string> allgather(const std::string& mine) override { return {mine}; }
  std::vector<std::string> alltoallv(const std::vector<std::string>& send) override { return send; }
  void allreduce(float*, size_t, ReduceOp) override {}
  void reduce_scatter(float*, const std::vector<size_t>&) override {}
  void allgather(float*, const std::vector<size_t>&) override {}
  void send(const float*, size_t, int peer) override;
  void recv(float*, size_t, int peer) override;
  void sendrecv(const float*, size_t, int dest, float*, size_t, int source) override;
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<SelfCommunicator>(); }
};

}  // namespace bellows::dist
