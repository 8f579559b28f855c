#include "io/safe_output.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "core/error.hpp"
#include "dist/context.hpp"
#include "log/log.hpp"

namespace bellows::io {
namespace fs = std::filesystem;
namespace {

std::string partial_prefix(const fs::path& final_path) {
  return "." + final_path.filename().string() + ".partial.";
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

int remove_stale_partials(const std::string& final_path) {
  fs::path fp(final_path);
  fs::path dir = fp.parent_path().empty() ? fs::path(".") : fp.parent_path();
  std::string prefix = partial_prefix(fp) + dist::short_hostname() + ".";
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (process_alive(pid)) continue;
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
    if (!rm) {
      ++removed;
      log::info("removed leftover " + entry.path().string() + " of a run that did not finish");
    }
  }
  return removed;
}

SafeOutput::SafeOutput(std::string final_path, Kind kind, bool overwrite, dist::Communicator* comm)
    : final_(std::move(final_path)), kind_(kind), overwrite_(overwrite), comm_(comm) {
  int rank = comm_ ? comm_->rank() : 0;
  std::string error;  // decided on rank 0, shared so every rank fails the same way
  if (rank == 0) {
    fs::path fp(final_);
    fs::path dir = fp.parent_path().empty() ? fs::path(".") : fp.parent_path();
    std::error_code ec;
    if (fp.filename().empty()) {
      error = "output '" + final_ + "': not a file or directory name";
    } else if (!fs::is_directory(dir, ec)) {
      error = "output '" + final_ + "': directory '" + dir.string() + "' does not exist";
    } else if (fs::exists(fp, ec) && !overwrite_) {
      error = "output '" + final_ + "' exists; pass --overwrite to replace it";
    } else if (fs::exists(fp, ec) && (kind_ == Kind::directory) != fs::is_directory(fp, ec)) {
      error = "output '" + final_ + "' exists and is a " + (fs::is_directory(fp, ec) ? "directory" : "file") +
              "; expected a " + (kind_ == Kind::directory ? "directory" : "file");
    } else {
      remove_stale_partials(final_);
      temp_ = (dir / (partial_prefix(fp) + dist::short_hostname() + "." + std::to_string(::getpid()))).string();
      if (kind_ == Kind::directory && !fs::create_directory(temp_, ec))
        error = "output '" + final_ + "': cannot create '" + temp_ + "': " + ec.message();
    }
  }
  if (comm_) {
    error = comm_->broadcast_string(error, 0);
    temp_ = comm_->broadcast_string(temp_, 0);
  }
  if (!error.empty()) throw UsageError(error);
}

namespace {
std::vector<std::string>& abandoned() {
  static std::vector<std::string> paths;
  return paths;
}
}  // namespace

void remove_abandoned_outputs() {
  for (const auto& p : abandoned()) {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
  abandoned().clear();
}

SafeOutput::~SafeOutput() {
  if (committed_ || temp_.empty()) return;
  if (comm_ && comm_->size() > 1) {
    // A failing rank: the other ranks may still be writing here. Leave the removal to the
    // harness, which first tells them the job is ending (any rank may be the one that fails).
    abandoned().push_back(temp_);
    return;
  }
  std::error_code ec;
  fs::remove_all(temp_, ec);
}

void SafeOutput::commit() {
  BELLOWS_CHECK(!committed_, "SafeOutput committed twice");
  if (comm_) comm_->barrier();  // every rank has finished writing into temp_
  std::string error;
  if (!comm_ || comm_->rank() == 0) {
    std::error_code ec;
    if (kind_ == Kind::file) {
      fs::rename(temp_, final_, ec);  // atomic replace of an existing file
      if (ec) error = "cannot move " + temp_ + " to " + final_ + ": " + ec.message();
    } else {
      fs::path old;
      if (fs::exists(final_, ec)) {
        // A directory cannot be replaced atomically: set the old one aside first, remove it only
        // once the new one is in place.
        old = fs::path(final_).parent_path() / ("." + fs::path(final_).filename().string() + ".old." + std::to_string(::getpid()));
        fs::rename(final_, old, ec);
        if (ec) error = "cannot move old output " + final_ + " aside: " + ec.message();
      }
      if (error.empty()) {
        fs::rename(temp_, final_, ec);
        if (ec) {
          error = "cannot move " + temp_ + " to " + final_ + ": " + ec.message();
          if (!old.empty()) fs::rename(old, final_, ec);  // put the old output back
        } else if (!old.empty()) {
          fs::remove_all(old, ec);
        }
      }
    }
  }
  if (comm_) error = comm_->broadcast_string(error, 0);
  if (!error.empty()) throw RuntimeError(error);
  committed_ = true;
}

}  // namespace bellows::io
