#include "cli/tool.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <new>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "core/version.hpp"
#include "dist/context.hpp"
#include "io/safe_output.hpp"
#include "log/log.hpp"
#include "log/progress.hpp"

namespace bellows::cli {
namespace {

// Before MPI is up, only the launcher's environment tells which rank we are; usage errors are
// the same on every rank, so rank 0 alone prints them.
bool env_rank_zero() { return dist::detect_launch(dist::current_env()).env_rank == 0; }

void print_line(const std::string& s) {
  std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

}  // namespace

int run_tool(int argc, char** argv, const ToolSpec& spec) {
  install_signal_handlers();
  Parsed parsed;
  try {
    parsed = parse(spec, argc, argv);
    if (parsed.action == Parsed::Action::help) {
      if (env_rank_zero()) std::cout << help_text(spec);
      return kExitOk;
    }
    log::Config lc;
    lc.level = log::parse_level(parsed.inv.vm["log-level"].as<std::string>());
    lc.all_ranks = parsed.inv.vm["log-all-ranks"].as<bool>();
    log::configure(lc);
    log::ProgressConfig pc;
    pc.mode = log::parse_progress_mode(parsed.inv.vm["progress"].as<std::string>());
    pc.stderr_is_tty = isatty(STDERR_FILENO) == 1;
    log::configure_progress(pc);
  } catch (const UsageError& e) {
    if (env_rank_zero()) print_line(spec.name + ": " + e.what());
    return kExitUsage;
  }

  dist::Context* ctx = nullptr;
  try {
    ctx = &dist::Context::init(&argc, &argv);
  } catch (const UsageError& e) {
    if (env_rank_zero()) print_line(spec.name + ": " + e.what());
    return kExitUsage;
  }
  log::Config lc = log::config();
  lc.rank = ctx->rank();
  lc.size = ctx->size();
  log::configure(lc);
  log::ProgressConfig pc = log::progress_config();
  pc.show = ctx->rank() == 0;
  log::configure_progress(pc);

  int code = kExitOk;
  std::string message;
  try {
    if (parsed.action == Parsed::Action::version) {
      std::vector<std::string> lines = ctx->gather_placement_lines();
      if (ctx->rank() == 0) {
        std::cout << version_text(spec.name);
        for (const auto& l : lines) std::cout << l << "\n";
        std::cout << std::flush;
      }
    } else {
      code = spec.run(parsed.inv);
    }
  } catch (const UsageError& e) {
    code = kExitUsage;
    message = e.what();
  } catch (const RuntimeError& e) {
    code = kExitRuntime;
    message = e.what();
  } catch (const Interrupted& e) {
    code = 128 + e.signal_number();
    message = std::string(e.what()) + "; partial outputs removed";
  } catch (const InternalError& e) {
    code = kExitInternal;
    message = std::string("internal error (please report): ") + e.what();
  } catch (const std::bad_alloc&) {
    code = kExitRuntime;
    message = "out of memory";
  } catch (const std::exception& e) {
    code = kExitInternal;
    message = std::string("internal error (please report): ") + e.what();
  }
  if (!message.empty()) {
    // A usage error is the same on every rank: said once, by rank 0, without a rank prefix.
    const bool usage = code == kExitUsage;
    std::string line =
        spec.name + ": " + (ctx->size() > 1 && !usage ? "rank " + std::to_string(ctx->rank()) + ": " : "") + message;
    if (ctx->size() > 1) ctx->abort(code, line, io::remove_abandoned_outputs, usage);  // does not return
    print_line(line);
  }
  ctx->finalize();
  return code;
}

}  // namespace bellows::cli
