// Communicator over an MPI communicator (CPU buffers).
#pragma once

#include <mpi.h>

#include "dist/comm.hpp"

namespace bellows::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (freed on destruction) unless it is MPI_COMM_WORLD/MPI_COMM_SELF.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override;
  void broadcast(void* data, size_t bytes, int root) override;
  void allreduce(int64_t* data, size_t n, ReduceOp op) override;
  void allreduce(double* data, size_t n, ReduceOp op) override;
  std::vector<std::string> gather(const std::string& mine, int root) override;
  std::vector<std::string> allgather(const std::string& mine) override;
  std::vector<std::string> alltoallv(const std::vector<std::string>& send) override;
  void allreduce(float* data, size_t n, ReduceOp op) override;
  void reduce_scatter(float* data, const std::vector<size_t>& counts) override;
  void allgather(float* data, const std::vector<size_t>& counts) override;
  void send(const float* data, size_t n, int peer) override;
  void recv(float* data, size_t n, int peer) override;
  void sendrecv(const float* send_data, size_t send_n, int dest, float* recv_data, size_t recv_n, int source) override;

  std::unique_ptr<Communicator> split(int color, int key) override;
  // The same, typed (for code that needs the MPI handle of the new group).
  std::unique_ptr<MpiCommunicator> split_mpi(int color, int key) const;
  MPI_Comm handle() const { return comm_; }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace bellows::dist
