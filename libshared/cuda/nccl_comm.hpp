// The communicator over NCCL, for GPU tensors (issue 6's second implementation of
// dist::Communicator; the CUDA backend of issue 10 is its user).
//
// Tensor operations (allreduce/reduce_scatter/allgather of float, send/recv/sendrecv) take
// device pointers and run through NCCL on the communicator's stream, synchronously: they return
// when the data has arrived, as the MPI ones do (a backend that overlaps them with compute will
// want stream-ordered variants). Everything else — strings, int64/double reductions, barriers,
// broadcasts of host memory — goes over the host group it was built from (MPI), which is also how
// NCCL is bootstrapped: rank 0 makes the unique id, MPI broadcasts it.
//
// NCCL is loaded at run time (dlopen of libnccl.so.2), so the tools start on machines without it;
// asking for this communicator there is an error that says what is missing. The caller selects
// the CUDA device (cudaSetDevice) before making it.
#pragma once

#include <memory>
#include <string>

#include "dist/comm.hpp"

namespace bellows::cuda {

// Empty when NCCL can be used here; otherwise why not (built without CUDA, no libnccl, no device).
std::string nccl_unavailable_reason();

// Collective over host_group. Throws RuntimeError naming what failed (NCCL's own message).
std::unique_ptr<dist::Communicator> make_nccl_communicator(std::unique_ptr<dist::Communicator> host_group);

}  // namespace bellows::cuda
