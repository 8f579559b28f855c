#include "dist/comm.hpp"

#include "core/error.hpp"

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

// A group of one has no peer but itself, and talking to oneself is a schedule bug.
void SelfCommunicator::send(const float*, size_t, int peer) {
  BELLOWS_CHECK(peer == -1, "send to a peer in a group of one");
}
void SelfCommunicator::recv(float*, size_t, int peer) {
  BELLOWS_CHECK(peer == -1, "receive from a peer in a group of one");
}
void SelfCommunicator::sendrecv(const float*, size_t, int dest, float*, size_t, int source) {
  BELLOWS_CHECK(dest == -1 && source == -1, "sendrecv with a peer in a group of one");
}

}  // namespace bellows::dist
