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

  // Convenience wrappers over the primitives above.
  std::string broadcast_string(const std::string& s, int root);
  int64_t allreduce_value(int64_t v, ReduceOp op);
  double allreduce_value(double v, ReduceOp op);
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
};

}  // namespace bellows::dist
