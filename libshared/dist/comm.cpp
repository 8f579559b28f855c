#include "dist/comm.hpp"

namespace bellows::dist {

std::string Communicator::broadcast_string(const std::string& s, int root) {
  int64_t n = static_cast<int64_t>(s.size());
  broadcast(&n, sizeof n, root);
  std::string out = rank() == root ? s : std::string(static_cast<size_t>(n), '\0');
  if (n > 0) broadcast(out.data(), static_cast<size_t>(n), root);
  return out;
}

int64_t Communicator::allreduce_value(int64_t v, ReduceOp op) {
  allreduce(&v, 1, op);
  return v;
}

double Communicator::allreduce_value(double v, ReduceOp op) {
  allreduce(&v, 1, op);
  return v;
}

}  // namespace bellows::dist
