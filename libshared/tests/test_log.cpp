#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "log/log.hpp"
#include "log/metrics.hpp"
#include "log/progress.hpp"
#include "test_util.hpp"

using namespace bellows;
using namespace std::chrono_literals;

namespace {

struct LogCapture {
  std::ostringstream out;
  log::Config saved = log::config();
  explicit LogCapture(log::Config c) {
    c.sink = &out;
    log::configure(c);
  }
  ~LogCapture() { log::configure(saved); }
};

}  // namespace

TEST(Log, OnlyRankZeroLogsByDefault) {
  {
    LogCapture cap({log::Level::info, false, 3, 4, nullptr});
    log::info("hidden");
    log::error("hidden too");
    EXPECT_EQ(cap.out.str(), "");
    log::write_always(log::Level::error, "fatal shown");
    EXPECT_NE(cap.out.str().find("fatal shown"), std::string::npos);
  }
  {
    LogCapture cap({log::Level::info, true, 3, 4, nullptr});
    log::info("shown");
    EXPECT_NE(cap.out.str().find("[rank 3] info: shown"), std::string::npos) << cap.out.str();
  }
}

TEST(Log, LevelFilters) {
  LogCapture cap({log::Level::warn, false, 0, 1, nullptr});
  log::info("no");
  log::warn("yes");
  EXPECT_EQ(cap.out.str().find("no"), std::string::npos);
  EXPECT_NE(cap.out.str().find("warn: yes"), std::string::npos);
  EXPECT_EQ(log::parse_level("debug"), log::Level::debug);
  EXPECT_THROW(log::parse_level("loud"), UsageError);
}

// A run's own log file gets every line this rank prints, appended, until stopped.
TEST(Log, CopyToFileAppendsWhatIsPrinted) {
  bellows::testing::TempDir t;
  LogCapture cap({log::Level::info, false, 0, 1, nullptr});
  log::info("before");
  log::copy_to_file(t / "run.log");
  log::info("first");
  log::debug("filtered");
  log::copy_to_file("");
  log::info("after");
  log::copy_to_file(t / "run.log");  // a second start appends
  log::warn("second start");
  log::copy_to_file("");
  std::ifstream f(t / "run.log");
  std::stringstream got;
  got << f.rdbuf();
  const std::string s = got.str();
  EXPECT_EQ(s.find("before"), std::string::npos) << s;
  EXPECT_NE(s.find("info: first\n"), std::string::npos) << s;
  EXPECT_EQ(s.find("filtered"), std::string::npos) << s;
  EXPECT_EQ(s.find("after"), std::string::npos) << s;
  EXPECT_NE(s.find("warn: second start\n"), std::string::npos) << s;
  EXPECT_NE(cap.out.str().find("after"), std::string::npos);  // the usual sink still gets everything
  EXPECT_THROW(log::copy_to_file(t / "no/such/dir/x.log"), RuntimeError);
}

TEST(Progress, ParsesModes) {
  EXPECT_EQ(log::parse_progress_mode("auto"), log::ProgressMode::automatic);
  EXPECT_EQ(log::parse_progress_mode("on"), log::ProgressMode::on);
  EXPECT_EQ(log::parse_progress_mode("off"), log::ProgressMode::off);
  EXPECT_THROW(log::parse_progress_mode("yes"), UsageError);
}

TEST(Progress, BarShowsPercentRateAndEta) {
  auto t0 = std::chrono::steady_clock::time_point{};
  auto now = t0;
  std::ostringstream out;
  log::Progress p("docs", 1000, "doc", true, &out, [&] { return now; }, 100ms);
  now = t0 + 10s;
  p.add(250);
  std::string bar = p.render_bar(20);
  EXPECT_NE(bar.find("[#####...............]"), std::string::npos) << bar;
  EXPECT_NE(bar.find("25%"), std::string::npos) << bar;
  EXPECT_NE(bar.find("25 doc/s"), std::string::npos) << bar;
  EXPECT_NE(bar.find("ETA 0:30"), std::string::npos) << bar;  // 750 left at 25/s
  EXPECT_NE(out.str().find('\r'), std::string::npos);          // redrawn in place
}

TEST(Progress, BatchLogsGetPeriodicLinesNotEveryUpdate) {
  auto t0 = std::chrono::steady_clock::time_point{};
  auto now = t0;
  std::ostringstream out;
  log::Progress p("tokens", 0, "tok", false, &out, [&] { return now; }, 30000ms);
  for (int i = 0; i < 100; ++i) {
    now += 1s;  // 100 s of work, one update per second
    p.add(10);
  }
  p.finish();
  std::string s = out.str();
  size_t lines = static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
  EXPECT_EQ(lines, 4u) << s;  // at 30 s, 60 s, 90 s, and the final line
  EXPECT_EQ(s.find('\r'), std::string::npos);
  EXPECT_NE(s.find("tokens: 1000 tok"), std::string::npos) << s;
  EXPECT_NE(s.find("done"), std::string::npos) << s;
}

TEST(Progress, Formats) {
  EXPECT_EQ(log::human_count(999), "999");
  EXPECT_EQ(log::human_count(1500), "1.5k");
  EXPECT_EQ(log::human_count(2.5e6), "2.5M");
  EXPECT_EQ(log::human_duration(42), "0:42");
  EXPECT_EQ(log::human_duration(3723), "1:02:03");
}

TEST(Metrics, AppendsOneJsonObjectPerLine) {
  bellows::testing::TempDir t;
  {
    log::MetricsWriter m(t / "metrics.jsonl");
    m.write({{"step", 1}, {"loss", 2.5}});
    m.write({{"step", 2}, {"loss", 2.25}});
  }
  {
    log::MetricsWriter m(t / "metrics.jsonl");  // a resumed run continues the file
    m.write({{"step", 3}, {"loss", 2.0}});
  }
  std::ifstream in(t / "metrics.jsonl");
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2]["step"], 3);
  EXPECT_DOUBLE_EQ(rows[1]["loss"].get<double>(), 2.25);
  EXPECT_TRUE(rows[0].contains("time"));
  EXPECT_THROW(log::MetricsWriter(t / "no/such/dir/m.jsonl"), RuntimeError);
}
