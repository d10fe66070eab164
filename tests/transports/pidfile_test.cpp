// PidFile: written when made, removed when destroyed, a running owner's file refused, a
// stale one replaced, another process's later file left alone.
#include "transports/pidfile.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "tests/support/process.hpp"
#include "tests/support/temp_files.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::child_exited;
using torsion::test::fork_child;
using torsion::test::read_file;
using torsion::test::TempDir;

TEST_CASE("PidFile: written when made, removed when destroyed") {
  TempDir dir("pidfile");
  const std::string path = dir.path + "/server.pid";
  {
    PidFile pid(path);
    CHECK(read_file(path) == std::to_string(::getpid()) + "\n");
    CHECK(PidFile::read(path) == ::getpid());
    PidFile moved(std::move(pid));
    CHECK(pid.path().empty());
    CHECK(std::filesystem::exists(path));  // the moved-from one removes nothing
  }
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(std::filesystem::is_empty(dir.path));  // no temporary left behind
}

TEST_CASE("PidFile: a running process's file is refused, a stale one replaced") {
  TempDir dir("pidfile");
  const std::string path = dir.path + "/server.pid";
  // A running process: the parent of this test (pid 1 is always running too, but may not
  // be signalable: EPERM counts as running).
  std::ofstream(path) << ::getppid() << "\n";
  const std::string running = std::to_string(::getppid()) + " is running";
  CHECK_THROWS_WITH_AS(PidFile{path}, doctest::Contains(running.c_str()), std::system_error);
  CHECK(PidFile::read(path) == ::getppid());  // left as it was

  // A process that has exited (and been reaped): stale.
  const pid_t gone = fork_child([] { return 0; });
  REQUIRE(gone > 0);
  Reactor reactor;
  int status = -1;
  REQUIRE(test::wait_for(reactor, [&] { return child_exited(gone, status); }, "the child's exit"));
  std::ofstream(path, std::ios::trunc) << gone << "\n";
  {
    PidFile pid(path);
    CHECK(PidFile::read(path) == ::getpid());
  }
  // Not a pid at all: stale too.
  for (const char* junk : {"", "abc\n", "-5\n", "12x\n", "99999999999999999999\n"}) {
    CAPTURE(junk);
    std::ofstream(path, std::ios::trunc) << junk;
    CHECK(PidFile::read(path) == 0);
    PidFile pid(path);
    CHECK(PidFile::read(path) == ::getpid());
  }
}

TEST_CASE("PidFile: a file another process wrote meanwhile is not removed") {
  TempDir dir("pidfile");
  const std::string path = dir.path + "/server.pid";
  {
    PidFile pid(path);
    std::ofstream(path, std::ios::trunc) << ::getppid() << "\n";  // a newer server took over
  }
  CHECK(PidFile::read(path) == ::getppid());
  CHECK_THROWS_AS(PidFile(dir.path + "/missing-dir/x.pid"), std::system_error);
}
