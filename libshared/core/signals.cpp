#include "core/signals.hpp"

#include <csignal>
#include <unistd.h>

#include "core/error.hpp"

namespace bellows {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int signo) {
  if (g_signal != 0) _exit(128 + signo);  // asked twice: stop now
  g_signal = signo;
}

}  // namespace

void install_signal_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // SLURM's --signal=USR1@T warning before a time limit; pretrain treats it like SIGTERM
  // (finish the step, checkpoint, exit 75), other tools like an interrupt.
  sigaction(SIGUSR1, &sa, nullptr);
}

int pending_signal() { return g_signal; }

void check_interrupt() {
  if (g_signal != 0) throw Interrupted(g_signal);
}

}  // namespace bellows
