#include "dist/mpi_comm.hpp"

#include <climits>
#include <cstring>

#include "core/error.hpp"

namespace bellows::dist {
namespace {

MPI_Op to_mpi(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return MPI_SUM;
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
  }
  return MPI_SUM;
}

int checked_count(size_t n) {
  BELLOWS_CHECK(n <= static_cast<size_t>(INT_MAX), "MPI message larger than INT_MAX elements");
  return static_cast<int>(n);
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF && comm_ != MPI_COMM_NULL)
    MPI_Comm_free(&comm_);
}

void MpiCommunicator::barrier() { MPI_Barrier(comm_); }

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  MPI_Bcast(data, checked_count(bytes), MPI_BYTE, root, comm_);
}

void MpiCommunicator::allreduce(int64_t* data, size_t n, ReduceOp op) {
  MPI_Allreduce(MPI_IN_PLACE, data, checked_count(n), MPI_INT64_T, to_mpi(op), comm_);
}

void MpiCommunicator::allreduce(double* data, size_t n, ReduceOp op) {
  MPI_Allreduce(MPI_IN_PLACE, data, checked_count(n), MPI_DOUBLE, to_mpi(op), comm_);
}

std::vector<std::string> MpiCommunicator::gather(const std::string& mine, int root) {
  int len = checked_count(mine.size());
  std::vector<int> lens(rank_ == root ? static_cast<size_t>(size_) : 0);
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, root, comm_);
  std::vector<int> displs(lens.size());
  std::string all;
  if (rank_ == root) {
    size_t total = 0;
    for (size_t i = 0; i < lens.size(); ++i) {
      displs[i] = checked_count(total);
      total += static_cast<size_t>(lens[i]);
    }
    all.resize(total);
  }
  MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, root, comm_);
  std::vector<std::string> out;
  if (rank_ == root)
    for (size_t i = 0; i < lens.size(); ++i)
      out.emplace_back(all.substr(static_cast<size_t>(displs[i]), static_cast<size_t>(lens[i])));
  return out;
}

std::vector<std::string> MpiCommunicator::allgather(const std::string& mine) {
  int len = checked_count(mine.size());
  std::vector<int> lens(static_cast<size_t>(size_));
  MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, comm_);
  std::vector<int> displs(lens.size());
  size_t total = 0;
  for (size_t i = 0; i < lens.size(); ++i) {
    displs[i] = checked_count(total);
    total += static_cast<size_t>(lens[i]);
  }
  std::string all(total, '\0');
  MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, comm_);
  std::vector<std::string> out;
  for (size_t i = 0; i < lens.size(); ++i)
    out.emplace_back(all.substr(static_cast<size_t>(displs[i]), static_cast<size_t>(lens[i])));
  return out;
}

std::vector<std::string> MpiCommunicator::alltoallv(const std::vector<std::string>& send) {
  BELLOWS_CHECK(send.size() == static_cast<size_t>(size_), "alltoallv needs one buffer per rank");
  std::vector<int> scount(send.size()), sdispl(send.size()), rcount(send.size()), rdispl(send.size());
  std::string sbuf;
  for (size_t r = 0; r < send.size(); ++r) {
    sdispl[r] = checked_count(sbuf.size());
    scount[r] = checked_count(send[r].size());
    sbuf += send[r];
  }
  MPI_Alltoall(scount.data(), 1, MPI_INT, rcount.data(), 1, MPI_INT, comm_);
  size_t total = 0;
  for (size_t r = 0; r < send.size(); ++r) {
    rdispl[r] = checked_count(total);
    total += static_cast<size_t>(rcount[r]);
  }
  std::string rbuf(total, '\0');
  MPI_Alltoallv(sbuf.data(), scount.data(), sdispl.data(), MPI_CHAR, rbuf.data(), rcount.data(), rdispl.data(), MPI_CHAR,
                comm_);
  std::vector<std::string> out;
  for (size_t r = 0; r < send.size(); ++r)
    out.emplace_back(rbuf.substr(static_cast<size_t>(rdispl[r]), static_cast<size_t>(rcount[r])));
  return out;
}

namespace {
// Times the enclosing tensor operation into the communicator's counter.
class TensorTimer {
 public:
  explicit TensorTimer(double& acc) : acc_(acc), t0_(MPI_Wtime()) {}
  ~TensorTimer() { acc_ += MPI_Wtime() - t0_; }
  TensorTimer(const TensorTimer&) = delete;
  TensorTimer& operator=(const TensorTimer&) = delete;

 private:
  double& acc_;
  double t0_;
};

// Tensor messages use their own tag, apart from the abort notices and anything else on the world.
constexpr int kTensorTag = 0x7E50;

int peer_or_null(int peer) { return peer < 0 ? MPI_PROC_NULL : peer; }
}  // namespace

void MpiCommunicator::allreduce(float* data, size_t n, ReduceOp op) {
  TensorTimer t(tensor_seconds_);
  MPI_Allreduce(MPI_IN_PLACE, data, checked_count(n), MPI_FLOAT, to_mpi(op), comm_);
}

void MpiCommunicator::reduce_scatter(float* data, const std::vector<size_t>& counts) {
  BELLOWS_CHECK(counts.size() == static_cast<size_t>(size_), "reduce_scatter needs one count per rank");
  TensorTimer t(tensor_seconds_);
  std::vector<int> c(counts.size());
  size_t displ = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    c[r] = checked_count(counts[r]);
    if (static_cast<int>(r) < rank_) displ += counts[r];
  }
  // In place, MPI leaves this rank's result at the start of the buffer: move it to its chunk.
  MPI_Reduce_scatter(MPI_IN_PLACE, data, c.data(), MPI_FLOAT, MPI_SUM, comm_);
  if (displ > 0 && counts[static_cast<size_t>(rank_)] > 0)
    std::memmove(data + displ, data, counts[static_cast<size_t>(rank_)] * sizeof(float));
}

void MpiCommunicator::allgather(float* data, const std::vector<size_t>& counts) {
  BELLOWS_CHECK(counts.size() == static_cast<size_t>(size_), "allgather needs one count per rank");
  TensorTimer t(tensor_seconds_);
  std::vector<int> c(counts.size()), d(counts.size());
  size_t displ = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    c[r] = checked_count(counts[r]);
    d[r] = checked_count(displ);
    displ += counts[r];
  }
  MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, c.data(), d.data(), MPI_FLOAT, comm_);
}

void MpiCommunicator::send(const float* data, size_t n, int peer) {
  if (peer < 0) return;
  TensorTimer t(tensor_seconds_);
  MPI_Send(data, checked_count(n), MPI_FLOAT, peer, kTensorTag, comm_);
}

void MpiCommunicator::recv(float* data, size_t n, int peer) {
  if (peer < 0) return;
  TensorTimer t(tensor_seconds_);
  MPI_Recv(data, checked_count(n), MPI_FLOAT, peer, kTensorTag, comm_, MPI_STATUS_IGNORE);
}

void MpiCommunicator::sendrecv(const float* send_data, size_t send_n, int dest, float* recv_data, size_t recv_n,
                               int source) {
  if (dest < 0 && source < 0) return;
  TensorTimer t(tensor_seconds_);
  MPI_Sendrecv(send_data, checked_count(send_n), MPI_FLOAT, peer_or_null(dest), kTensorTag, recv_data,
               checked_count(recv_n), MPI_FLOAT, peer_or_null(source), kTensorTag, comm_, MPI_STATUS_IGNORE);
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) { return split_mpi(color, key); }

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_mpi(int color, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  MPI_Comm_split(comm_, color, key, &out);
  return std::make_unique<MpiCommunicator>(out);
}

}  // namespace bellows::dist
