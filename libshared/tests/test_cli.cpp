#include <gtest/gtest.h>

#include <fstream>

#include "cli/app.hpp"
#include "core/error.hpp"
#include "core/read_file.hpp"
#include "test_util.hpp"

using namespace bellows;
using bellows::testing::TempDir;

namespace {

cli::ToolSpec spec(bool writes = true) {
  cli::ToolSpec s;
  s.name = "demo-tool";
  s.summary = "a tool for tests";
  s.usage = "demo-tool [options] INPUT...";
  cli::po::options_description g("Demo options");
  g.add_options()("input", cli::po::value<std::vector<std::string>>(), "inputs")(
      "threshold", cli::po::value<double>()->default_value(0.8), "a number")(
      "mode", cli::po::value<std::string>()->default_value("fast"), "a word")(
      "dry-run", cli::po::bool_switch(), "a switch");
  s.groups.push_back(g);
  s.positional.add("input", -1);
  s.writes_output = writes;
  s.examples = {"demo-tool a.jsonl -o out"};
  return s;
}

cli::Parsed parse(std::vector<std::string> args, const cli::ToolSpec& s = spec()) {
  std::vector<const char*> argv{"demo-tool"};
  for (auto& a : args) argv.push_back(a.c_str());
  return cli::parse(s, static_cast<int>(argv.size()), argv.data());
}

std::string usage_error(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Cli, ParsesPositionalsDefaultsAndFlags) {
  auto p = parse({"a.jsonl", "b.jsonl", "--threshold", "0.5", "-o", "out", "--dry-run"});
  EXPECT_EQ(p.action, cli::Parsed::Action::run);
  EXPECT_EQ(p.inv.get<std::vector<std::string>>("input"), (std::vector<std::string>{"a.jsonl", "b.jsonl"}));
  EXPECT_DOUBLE_EQ(p.inv.get<double>("threshold"), 0.5);
  EXPECT_EQ(p.inv.get<std::string>("mode"), "fast");
  EXPECT_TRUE(p.inv.get<bool>("dry-run"));
  EXPECT_TRUE(p.inv.has("threshold"));
  EXPECT_FALSE(p.inv.has("mode"));  // defaulted
}

TEST(Cli, HelpAndVersionWinOverMissingRequiredOutput) {
  EXPECT_EQ(parse({"--help"}).action, cli::Parsed::Action::help);
  EXPECT_EQ(parse({"--version"}).action, cli::Parsed::Action::version);
}

TEST(Cli, UsageErrorsNameTheFlag) {
  EXPECT_NE(usage_error({"-o", "x", "--bogus"}).find("--bogus"), std::string::npos);
  EXPECT_NE(usage_error({"-o", "x", "--threshold", "high"}).find("threshold"), std::string::npos);
  EXPECT_NE(usage_error({"a.jsonl"}).find("--output"), std::string::npos);
  EXPECT_NE(usage_error({"-o"}).find("output"), std::string::npos);
  // One line only: SLURM logs and grep depend on it.
  EXPECT_EQ(usage_error({"-o", "x", "--threshold", "high"}).find('\n'), std::string::npos);
}

TEST(Cli, NegativeValuesForUnsignedOptionsAreRefused) {
  cli::ToolSpec s = spec();
  cli::po::options_description g("Sizes");
  g.add_options()("max-bytes", cli::po::value<size_t>()->default_value(10), "a size");
  s.groups.push_back(g);
  std::vector<const char*> argv{"demo-tool", "-o", "x", "--max-bytes", "-1"};
  try {
    cli::parse(s, static_cast<int>(argv.size()), argv.data());
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--max-bytes: must not be negative"), std::string::npos) << e.what();
  }
  std::vector<const char*> ok{"demo-tool", "-o", "x", "--max-bytes", "7"};
  EXPECT_EQ(cli::parse(s, static_cast<int>(ok.size()), ok.data()).inv.get<size_t>("max-bytes"), 7u);
}

TEST(Cli, ConfigFileIsOverriddenByCommandLine) {
  TempDir t;
  std::ofstream(t / "run.ini") << "# comment\nthreshold = 0.3\nmode = slow\ndry-run = true\n"
                               << "[other-tool]\nunknown-there = 1\n[demo-tool]\noutput = from-config\n";
  auto p = parse({"--config", t / "run.ini", "--mode", "cli"});
  EXPECT_DOUBLE_EQ(p.inv.get<double>("threshold"), 0.3);
  EXPECT_EQ(p.inv.get<std::string>("mode"), "cli");
  EXPECT_TRUE(p.inv.get<bool>("dry-run"));
  EXPECT_EQ(p.inv.get<std::string>("output"), "from-config");
}

TEST(Cli, ConfigErrorsNameFileAndLine) {
  TempDir t;
  std::ofstream(t / "bad.ini") << "threshold = 0.3\nnot-an-option = 1\n";
  std::string e = usage_error({"--config", t / "bad.ini", "-o", "x"});
  EXPECT_NE(e.find("bad.ini:2"), std::string::npos) << e;
  EXPECT_NE(e.find("not-an-option"), std::string::npos) << e;

  std::ofstream(t / "syntax.ini") << "threshold 0.3\n";
  e = usage_error({"--config", t / "syntax.ini", "-o", "x"});
  EXPECT_NE(e.find("syntax.ini:1"), std::string::npos) << e;

  std::ofstream(t / "switch.ini") << "dry-run = maybe\n";
  e = usage_error({"--config", t / "switch.ini", "-o", "x"});
  EXPECT_NE(e.find("true or false"), std::string::npos) << e;

  std::ofstream(t / "value.ini") << "threshold = high\n";
  e = usage_error({"--config", t / "value.ini", "-o", "x"});
  EXPECT_NE(e.find("value.ini"), std::string::npos) << e;
  EXPECT_NE(e.find("threshold"), std::string::npos) << e;

  e = usage_error({"--config", t / "missing.ini", "-o", "x"});
  EXPECT_NE(e.find("missing.ini"), std::string::npos) << e;
}

TEST(Cli, HelpTextHasGroupsExamplesAndExitCodes) {
  std::string h = cli::help_text(spec());
  EXPECT_NE(h.find("Demo options"), std::string::npos);
  EXPECT_NE(h.find("Common options"), std::string::npos);
  EXPECT_NE(h.find("--overwrite"), std::string::npos);
  EXPECT_NE(h.find("Examples:"), std::string::npos);
  EXPECT_NE(h.find("Exit codes"), std::string::npos);
  // A tool that writes nothing offers no -o/--overwrite: no flag that does nothing.
  EXPECT_EQ(cli::help_text(spec(false)).find("--overwrite"), std::string::npos);
  EXPECT_EQ(cli::help_text(spec(false)).find("--metrics"), std::string::npos);
}

TEST(Cli, EffectiveOptionsRecordEveryValue) {
  auto p = parse({"in.jsonl", "-o", "out", "--threshold", "0.25"});
  nlohmann::json j = p.inv.effective_options();
  EXPECT_DOUBLE_EQ(j["threshold"].get<double>(), 0.25);
  EXPECT_EQ(j["mode"], "fast");
  EXPECT_EQ(j["output"], "out");
  EXPECT_EQ(j["input"], nlohmann::json({"in.jsonl"}));
  EXPECT_EQ(j["log-level"], "info");
}

TEST(ReadFile, WholeFilesAndJson) {
  bellows::testing::TempDir t;
  const std::string good = t / "a.json", bad = t / "b.json";
  std::ofstream(good) << "{\"x\": 1}";
  std::ofstream(bad) << "{\"x\": ";
  EXPECT_EQ(bellows::read_whole_file(good).value(), "{\"x\": 1}");
  EXPECT_FALSE(bellows::read_whole_file(t / "missing").has_value());
  EXPECT_EQ(bellows::read_json_file(good)["x"], 1);
  try {
    bellows::read_json_file(bad);
    FAIL() << "invalid JSON accepted";
  } catch (const bellows::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ": not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bellows::read_json_file(t / "missing"), bellows::UsageError);
}
