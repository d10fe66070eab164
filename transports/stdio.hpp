#pragma once
/// \file
/// stdio: a Transport over this process's own stdin and stdout, so that any Protocol can
/// run as a filter (Twisted's StandardIO).

#include <memory>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"

namespace torsion {

/// Which descriptors connect_stdio uses (tests and inetd-style programs pass others).
struct StdioOptions {
  int input_fd = 0;   ///< read from here (stdin)
  int output_fd = 1;  ///< write to here (stdout)
};

/// Runs `protocol` over stdin/stdout: bytes read from stdin go to data_received, writes go
/// to stdout, end-of-file on stdin is eof_received (return true to keep writing), and
/// lose_connection / lose_write_connection close stdout after the queued bytes are
/// written. connection_made follows from the loop; get_peer() and get_host() are
/// Address() (family none). The transport works on duplicates of the two descriptors; it
/// switches their shared file descriptions to non-blocking mode while it runs (which
/// other users of the same terminal or pipe see) and restores the previous mode when it
/// closes. Regular files and /dev/null work too (they are never "not ready"). Throws
/// std::invalid_argument for a null protocol or a negative descriptor,
/// std::system_error if a descriptor cannot be duplicated.
std::shared_ptr<Transport> connect_stdio(Reactor& reactor, std::unique_ptr<Protocol> protocol,
                                         const StdioOptions& options = {});

}  // namespace torsion
