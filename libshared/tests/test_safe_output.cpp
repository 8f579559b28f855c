#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "io/safe_output.hpp"
#include "test_util.hpp"

using namespace bellows;
using bellows::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string read(const std::string& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Everything in `dir` that does not start with '.', i.e. what looks like a result.
std::vector<std::string> visible(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string()[0] != '.') out.push_back(e.path().filename().string());
  return out;
}

std::vector<std::string> hidden(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string()[0] == '.') out.push_back(e.path().filename().string());
  return out;
}

}  // namespace

TEST(SafeOutput, DirectoryAppearsOnlyOnCommit) {
  TempDir t;
  io::SafeOutput out(t / "run", io::SafeOutput::Kind::directory, false);
  std::ofstream(out.temp_path() + "/shard-0.h5") << "data";
  EXPECT_FALSE(fs::exists(t / "run"));
  EXPECT_EQ(fs::path(out.temp_path()).filename().string()[0], '.');
  out.commit();
  EXPECT_EQ(read(t / "run/shard-0.h5"), "data");
  EXPECT_TRUE(hidden(t.path()).empty());
}

TEST(SafeOutput, FileAppearsOnlyOnCommit) {
  TempDir t;
  io::SafeOutput out(t / "report.json", io::SafeOutput::Kind::file, false);
  std::ofstream(out.temp_path()) << "{}";
  EXPECT_FALSE(fs::exists(t / "report.json"));
  out.commit();
  EXPECT_EQ(read(t / "report.json"), "{}");
}

TEST(SafeOutput, AbandonedOutputIsRemoved) {
  TempDir t;
  {
    io::SafeOutput out(t / "run", io::SafeOutput::Kind::directory, false);
    std::ofstream(out.temp_path() + "/half.h5") << "partial";
  }  // a tool that throws unwinds through here
  EXPECT_TRUE(visible(t.path()).empty());
  EXPECT_TRUE(hidden(t.path()).empty());
}

TEST(SafeOutput, ExistingOutputNeedsOverwriteAndSurvivesUntilCommit) {
  TempDir t;
  fs::create_directory(t / "run");
  std::ofstream(t / "run/old.h5") << "old";
  try {
    io::SafeOutput out(t / "run", io::SafeOutput::Kind::directory, false);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos);
  }
  {
    io::SafeOutput out(t / "run", io::SafeOutput::Kind::directory, true);
    std::ofstream(out.temp_path() + "/new.h5") << "new";
    EXPECT_EQ(read(t / "run/old.h5"), "old");  // still there while the new one is written
  }  // failed: the old output is untouched
  EXPECT_EQ(read(t / "run/old.h5"), "old");
  io::SafeOutput out(t / "run", io::SafeOutput::Kind::directory, true);
  std::ofstream(out.temp_path() + "/new.h5") << "new";
  out.commit();
  EXPECT_EQ(read(t / "run/new.h5"), "new");
  EXPECT_FALSE(fs::exists(t / "run/old.h5"));
  EXPECT_TRUE(hidden(t.path()).empty());
}

TEST(SafeOutput, RefusesMissingParentAndKindMismatch) {
  TempDir t;
  EXPECT_THROW(io::SafeOutput(t / "no/such/dir", io::SafeOutput::Kind::directory, false), UsageError);
  std::ofstream(t / "afile") << "x";
  EXPECT_THROW(io::SafeOutput(t / "afile", io::SafeOutput::Kind::directory, true), UsageError);
}

// A writer killed outright (SIGKILL, node failure) leaves only a hidden ".partial" name: nothing
// that looks complete. The next run on the host removes it.
TEST(SafeOutput, KilledWriterLeavesNothingThatLooksComplete) {
  TempDir t;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    io::SafeOutput out(t / "run", io::SafeOutput::Kind::directory, false);
    std::ofstream(out.temp_path() + "/shard-0.h5") << std::string(1 << 16, 'x');
    char c = 1;
    (void)!write(ready[1], &c, 1);
    for (;;) pause();  // "still writing" when the kill arrives
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(visible(t.path()).empty());
  ASSERT_EQ(hidden(t.path()).size(), 1u);
  EXPECT_NE(hidden(t.path())[0].find(".run.partial."), std::string::npos);
  EXPECT_EQ(io::remove_stale_partials(t / "run"), 1);
  EXPECT_TRUE(hidden(t.path()).empty());
}

// SIGTERM (scancel, preemption) unwinds: the partial output is removed and the exit code is
// 128+15.
TEST(SafeOutput, TerminatedWriterRemovesItsPartialOutput) {
  TempDir t;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    install_signal_handlers();
    try {
      io::SafeOutput out(t / "run", io::SafeOutput::Kind::directory, false);
      std::ofstream(out.temp_path() + "/shard-0.h5") << "partial";
      char c = 1;
      (void)!write(ready[1], &c, 1);
      for (;;) {
        check_interrupt();
        usleep(1000);
      }
    } catch (const Interrupted& e) {
      _exit(128 + e.signal_number());
    }
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 143);
  EXPECT_TRUE(visible(t.path()).empty());
  EXPECT_TRUE(hidden(t.path()).empty());
}

TEST(SafeOutput, LiveWritersPartialIsNotTouched) {
  TempDir t;
  io::SafeOutput a(t / "run", io::SafeOutput::Kind::directory, false);
  EXPECT_EQ(io::remove_stale_partials(t / "run"), 0);  // our own process is alive
  EXPECT_TRUE(fs::exists(a.temp_path()));
}
