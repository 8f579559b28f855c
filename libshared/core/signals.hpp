// SIGINT/SIGTERM turn into a flag that long loops poll (progress updates poll it for free), so
// the stack unwinds, temporary outputs are removed, and the tool exits 128+signal. A second
// signal ends the process at once.
#pragma once

namespace bellows {

void install_signal_handlers();
// The signal received, or 0.
int pending_signal();
// Throws Interrupted when a signal was received.
void check_interrupt();

}  // namespace bellows
