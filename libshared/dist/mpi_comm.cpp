#include "dist/mpi_comm.hpp"

#include <climits>

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

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(int color, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  MPI_Comm_split(comm_, color, key, &out);
  return std::make_unique<MpiCommunicator>(out);
}

}  // namespace bellows::dist
