#include "core/error.hpp"
#include "cuda/nccl_comm.hpp"

namespace bellows::cuda {

std::string nccl_unavailable_reason() { return "built without CUDA (rebuild with nvcc on PATH or CUDA=1)"; }

std::unique_ptr<dist::Communicator> make_nccl_communicator(std::unique_ptr<dist::Communicator>) {
  throw RuntimeError("NCCL communicator: " + nccl_unavailable_reason());
}

}  // namespace bellows::cuda
