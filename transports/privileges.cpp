#include "transports/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace torsion {

namespace {

// `text` as a decimal id, or nothing.
template <class Id>
std::optional<Id> numeric_id(const std::string& text) {
  unsigned long long value = 0;
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || at != end || text.empty() || value > static_cast<Id>(-1) - 1)
    return std::nullopt;
  return static_cast<Id>(value);
}

[[noreturn]] void fail(const char* step) {
  throw std::system_error(errno, std::system_category(), std::string("drop_privileges: ") + step);
}

// The passwd entry of `user` (by name, or by number), copied out of getpwnam_r's buffer.
struct User {
  bool found = false;
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

User find_user(const std::string& user) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* result = nullptr;
  User out;
  const auto number = numeric_id<uid_t>(user);
  const int rc = number ? ::getpwuid_r(*number, &pw, buf.data(), buf.size(), &result)
                        : ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &result);
  if (rc == 0 && result != nullptr) {
    out.found = true;
    out.name = pw.pw_name;
    out.uid = pw.pw_uid;
    out.gid = pw.pw_gid;
  } else if (number) {  // a numeric uid without an entry is allowed, as twistd allows it
    out.uid = *number;
    out.gid = static_cast<gid_t>(*number);
  } else {
    throw std::invalid_argument("drop_privileges: no such user '" + user + "'");
  }
  return out;
}

gid_t find_group(const std::string& group) {
  if (const auto number = numeric_id<gid_t>(group)) return *number;
  std::vector<char> buf(16384);
  struct group gr{};
  struct group* result = nullptr;
  if (::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &result) != 0 || result == nullptr)
    throw std::invalid_argument("drop_privileges: no such group '" + group + "'");
  return gr.gr_gid;
}

}  // namespace

Credentials drop_privileges(const std::string& user, const std::string& group) {
  if (user.empty()) throw std::invalid_argument("drop_privileges: empty user");
  const User u = find_user(user);
  const gid_t gid = group.empty() ? u.gid : find_group(group);
  if (u.found) {
    if (::initgroups(u.name.c_str(), gid) != 0) fail("initgroups");
  } else if (::setgroups(0, nullptr) != 0) {
    fail("setgroups");
  }
  if (::setresgid(gid, gid, gid) != 0) fail("setresgid");
  if (::setresuid(u.uid, u.uid, u.uid) != 0) fail("setresuid");
  if (u.uid != 0 && ::setuid(0) == 0) {
    errno = EPERM;
    fail("root could be regained after setresuid");
  }
  return {u.uid, gid};
}

}  // namespace torsion
