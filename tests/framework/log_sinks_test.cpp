// The file and journal sinks: lines appended to a file and reopened after a rename (by
// call and by SIGHUP), the journal's native datagrams byte for byte on a socket the test
// binds (never the real journal), and the "<N>" stderr lines.
#include "framework/log_file.hpp"
#include "framework/log_journal.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tests/support/fake_journal.hpp"
#include "tests/support/log_guard.hpp"
#include "tests/support/temp_files.hpp"

using namespace torsion;
using torsion::test::capture_stderr;
using torsion::test::LogSinkGuard;
using torsion::test::FakeJournal;
using torsion::test::read_file;
using torsion::test::TempDir;

namespace {


std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// A LogFile at DIR/server.log, installed as the sink until the test ends.
struct FileLog {
  LogSinkGuard guard;
  TempDir dir{"logfile"};
  std::string path = dir / "server.log";
  std::shared_ptr<LogFile> file;
  explicit FileLog(bool install = true) {
    file = LogFile::open(path);
    if (install) set_log_event_sink(file->sink());
  }
};

const LogContext conn{5, Address::ip("127.0.0.1", 8080), Address::ip("127.0.0.1", 40312)};

}  // namespace

TEST_CASE("LogFile appends one timestamped line per event to the file") {
  LogSinkGuard guard;
  TempDir dir("logfile");
  const std::string path = dir / "server.log";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("an older line\n", f);
    std::fclose(f);
  }
  auto file = LogFile::open(path);
  CHECK(file->path() == path);
  set_log_event_sink(file->sink());
  log(LogLevel::info, "starting");
  log(LogLevel::warning, conn, "client too slow");
  log(LogLevel::debug, "below the level: dropped");
  // Nothing is buffered in the process: the lines are in the file as soon as logged.
  const auto lines = lines_of(read_file(path));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "an older line");  // appended, not truncated
  CHECK(ends_with(lines[1], "Z [info] starting"));
  CHECK(ends_with(lines[2], "Z [warning] conn 5 127.0.0.1:8080 <- 127.0.0.1:40312: client too slow"));
  CHECK(lines[1].size() == std::string("2026-11-26T05:30:00.123Z [info] starting").size());
  file->write_line("raw");
  CHECK(lines_of(read_file(path)).back() == "raw");
}

TEST_CASE("LogFile::reopen after a rename writes to a new file at the path") {
  FileLog f;
  const std::string& path = f.path;
  auto& file = f.file;
  log(LogLevel::info, "before the rotation");
  std::filesystem::rename(path, path + ".1");  // what logrotate does
  log(LogLevel::info, "still to the renamed file");
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(file->reopen());
  log(LogLevel::info, "after the rotation");
  const auto old_lines = lines_of(read_file(path + ".1"));
  REQUIRE(old_lines.size() == 2);
  CHECK(ends_with(old_lines[0], "before the rotation"));
  CHECK(ends_with(old_lines[1], "still to the renamed file"));
  const auto new_lines = lines_of(read_file(path));
  REQUIRE(new_lines.size() == 1);
  CHECK(ends_with(new_lines[0], "after the rotation"));
}

TEST_CASE("LogFile::reopen_on_sighup reopens before the next line after SIGHUP") {
  FileLog f;
  const std::string& path = f.path;
  const TempDir& dir = f.dir;
  f.file->reopen_on_sighup();
  f.file->reopen_on_sighup();  // idempotent
  log(LogLevel::info, "one");
  std::filesystem::rename(path, path + ".1");
  REQUIRE(std::raise(SIGHUP) == 0);  // handled (noted) before raise returns; we live on
  log(LogLevel::info, "two");
  log(LogLevel::info, "three");  // one reopen per signal: same new file
  CHECK(lines_of(read_file(path + ".1")).size() == 1);
  const auto lines = lines_of(read_file(path));
  REQUIRE(lines.size() == 2);
  CHECK(ends_with(lines[0], "two"));
  CHECK(ends_with(lines[1], "three"));
  // Another LogFile made after the signal does not reopen for it.
  auto other = LogFile::open(dir / "other.log");
  other->reopen_on_sighup();
  other->write_line("x");
  std::filesystem::rename(dir / "other.log", dir / "other.log.1");
  other->write_line("y");
  CHECK(read_file(dir / "other.log.1") == "x\ny\n");
}

TEST_CASE("LogFile keeps writing to the old file when the reopen fails") {
  LogSinkGuard guard;
  TempDir dir("logfile");
  const std::string subdir = dir / "logs";
  std::filesystem::create_directory(subdir);
  const std::string path = subdir + "/server.log";
  auto file = LogFile::open(path);
  file->write_line("one");
  std::filesystem::rename(path, dir / "kept.log");
  std::filesystem::remove(subdir);  // the path cannot be made again
  bool reopened = true;
  const std::string err = capture_stderr([&] { reopened = file->reopen(); });
  CHECK_FALSE(reopened);
  CHECK(err.find("cannot reopen log file " + path) != std::string::npos);
  file->write_line("two");
  CHECK(read_file(dir / "kept.log") == "one\ntwo\n");
}

TEST_CASE("LogFile::open names the path it cannot open") {
  TempDir dir("logfile");
  const std::string path = dir / "missing/server.log";
  try {
    (void)LogFile::open(path);
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
}

TEST_CASE("LogFile lines from several threads are never mixed") {
  FileLog f;
  const std::string& path = f.path;
  constexpr int threads = 4, per_thread = 200;
  {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([t] {
        const std::string text = "thread " + std::to_string(t) + " " + std::string(100, 'a' + static_cast<char>(t));
        for (int i = 0; i < per_thread; ++i) log(LogLevel::info, text);
      });
  }
  const auto lines = lines_of(read_file(path));
  REQUIRE(lines.size() == threads * per_thread);
  for (const auto& line : lines) {
    const auto at = line.find("[info] thread ");
    REQUIRE(at != std::string::npos);
    const int t = line[at + 14] - '0';
    CHECK(ends_with(line, std::string(100, 'a' + static_cast<char>(t))));
  }
}

TEST_CASE("journal_sink sends the native protocol's fields, one datagram per event") {
  LogSinkGuard guard;
  FakeJournal journal;
  set_log_event_sink(journal_sink("torsion-test", journal.path));
  log(LogLevel::warning, conn, "client too slow");
  CHECK(journal.receive() ==
        "MESSAGE=conn 5 127.0.0.1:8080 <- 127.0.0.1:40312: client too slow\n"
        "PRIORITY=4\n"
        "SYSLOG_IDENTIFIER=torsion-test\n"
        "TORSION_CONNECTION_ID=5\n"
        "TORSION_HOST=127.0.0.1:8080\n"
        "TORSION_PEER=127.0.0.1:40312\n");
  set_log_level(LogLevel::debug);
  log(LogLevel::debug, "d");
  log(LogLevel::info, "i");
  log(LogLevel::error, "e");
  CHECK(journal.receive() == "MESSAGE=d\nPRIORITY=7\nSYSLOG_IDENTIFIER=torsion-test\n");
  CHECK(journal.receive() == "MESSAGE=i\nPRIORITY=6\nSYSLOG_IDENTIFIER=torsion-test\n");
  CHECK(journal.receive() == "MESSAGE=e\nPRIORITY=3\nSYSLOG_IDENTIFIER=torsion-test\n");
  CHECK(journal.receive().empty());  // one datagram per event, no more
}

TEST_CASE("journal entries carry a value with newlines as length and bytes") {
  const LogEvent event{LogLevel::error, "two\nlines", nullptr};
  const std::string expected = std::string("MESSAGE\n") + std::string("\x09\0\0\0\0\0\0\0", 8) +
                               "two\nlines\nPRIORITY=3\n";
  CHECK(format_journal_entry(event, "") == expected);  // no identifier: no field
  // A context with only a peer: no id or host fields.
  const LogContext peer_only{0, Address(), Address::ip("10.0.0.1", 9)};
  const LogEvent about_peer{LogLevel::info, "hi", &peer_only};
  CHECK(format_journal_entry(about_peer, "x") ==
        "MESSAGE=<- 10.0.0.1:9: hi\nPRIORITY=6\nSYSLOG_IDENTIFIER=x\nTORSION_PEER=10.0.0.1:9\n");
}

TEST_CASE("journal entries cut a huge message to max_journal_message bytes") {
  LogSinkGuard guard;
  FakeJournal journal;
  set_log_event_sink(journal_sink("big", journal.path));
  log(LogLevel::info, std::string(max_journal_message + 1000, 'x'));
  const std::string got = journal.receive();
  CHECK(got == "MESSAGE=" + std::string(max_journal_message, 'x') + "\nPRIORITY=6\nSYSLOG_IDENTIFIER=big\n");
}

TEST_CASE("journal_sink without a journal writes to stderr instead and says so once") {
  LogSinkGuard guard;
  TempDir dir("journal");
  set_log_event_sink(journal_sink("nobody-listens", dir / "no-socket"));
  const std::string err = capture_stderr([] {
    log(LogLevel::error, "first");
    log(LogLevel::error, "second");
  });
  const auto lines = lines_of(err);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].find("cannot log to the journal at " + dir / "no-socket") != std::string::npos);
  CHECK(ends_with(lines[1], "Z [error] first"));
  CHECK(ends_with(lines[2], "Z [error] second"));
}

TEST_CASE("journal_sink refuses a socket path too long for a Unix address") {
  CHECK_THROWS_AS(journal_sink("x", std::string(200, 'p')), std::invalid_argument);
  CHECK_THROWS_AS(journal_sink("x", ""), std::invalid_argument);
}

TEST_CASE("stderr_priority_sink prefixes each line with its syslog priority") {
  LogSinkGuard guard;
  set_log_event_sink(stderr_priority_sink());
  set_log_level(LogLevel::debug);
  const std::string err = capture_stderr([] {
    log(LogLevel::debug, "d");
    log(LogLevel::info, "i");
    log(LogLevel::warning, conn, "w");
    log(LogLevel::error, "two\nlines");
  });
  CHECK(err ==
        "<7>d\n<6>i\n<4>conn 5 127.0.0.1:8080 <- 127.0.0.1:40312: w\n<3>two lines\n");
}
