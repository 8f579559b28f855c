// Test helper built on the same harness as every tool: rank --fail-rank throws a RuntimeError
// while every other rank waits in a barrier it can never leave. The job must still end, with
// the failing rank's message printed once and exit code 1 (tests/bats/mpi.bats).
#include <unistd.h>

#include "cli/tool.hpp"
#include "core/error.hpp"
#include "dist/context.hpp"

using namespace bellows;

int main(int argc, char** argv) {
  cli::ToolSpec s;
  s.name = "fail-on-rank";
  s.summary = "test helper: one rank fails while the others wait";
  s.usage = "fail-on-rank --fail-rank R";
  cli::po::options_description g("Options");
  g.add_options()("fail-rank", cli::po::value<int>()->required(), "rank that fails");
  s.groups.push_back(g);
  s.run = [](cli::Invocation& inv) {
    auto& ctx = dist::Context::get();
    if (ctx.rank() == inv.get<int>("fail-rank")) {
      usleep(200000);  // let the other ranks reach the barrier first
      throw RuntimeError("input.jsonl:17: planted failure on this rank");
    }
    ctx.world().barrier();  // never completes: the failing rank does not arrive
    return 0;
  };
  return cli::run_tool(argc, argv, s);
}
