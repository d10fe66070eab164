#pragma once
// Test helpers for files: a temporary directory removed at the end of the test, a whole
// file read into a string, and what a piece of code writes to stderr.

#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

namespace torsion::test {

// A fresh directory under /tmp ("/tmp/torsion-PREFIX-XXXXXX"), removed with everything in
// it when the object goes.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& prefix = "test") {
    std::string tmpl = "/tmp/torsion-" + prefix + "-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // The path of `name` inside the directory.
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// The whole content of the file at `path` ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// What `fn` writes to descriptor 2 (stdio's stderr and raw writes alike) while it runs.
template <class F>
std::string capture_stderr(F&& fn) {
  std::fflush(stderr);
  char path[] = "/tmp/torsion-stderr-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace torsion::test
