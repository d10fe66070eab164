#pragma once
/// \file
/// Dropping root after binding, as twistd's --uid/--gid: bind the privileged port (or take
/// it from systemd) as root, then run as an ordinary user.

#include <string>
#include <sys/types.h>

namespace torsion {

/// Who the process runs as after drop_privileges.
struct Credentials {
  uid_t uid = 0;  ///< the real, effective and saved user id
  gid_t gid = 0;  ///< the real, effective and saved group id
};

/// Makes this process run as `user` (a name from the passwd database, or a numeric uid)
/// and `group` (a name or numeric gid; empty: the user's primary group from passwd, or a
/// gid equal to a numeric uid that has no passwd entry). In this order: the supplementary
/// groups become the user's (initgroups; none for a user without a passwd entry), then
/// setgid, then setuid, so that no step needs a privilege an earlier one gave up. Then it
/// checks that root cannot be regained (setuid(0) must fail). Call it after listening
/// and before serving; descriptors already open (listening sockets, log files) stay
/// usable. Files created later belong to the new user: a pidfile written before cannot
/// be removed by it unless its directory allows. Affects every thread of the process
/// (glibc applies set*id to all). Returns the credentials in force. Throws
/// std::invalid_argument for an unknown user or group (or an empty user), and
/// std::system_error (EPERM when not root) when a step fails; the process may then have
/// dropped part of its privileges, so treat a throw as fatal.
Credentials drop_privileges(const std::string& user, const std::string& group = "");

}  // namespace torsion
