#include "transports/descriptors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <asio/local/stream_protocol.hpp>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "transports/detail/stream_engine.hpp"

namespace torsion {

void send_descriptors(Transport& transport, std::span<const int> fds, std::string_view data) {
  using UnixTransport = detail::StreamEngine<asio::local::stream_protocol::socket>;
  auto* unix_transport = dynamic_cast<UnixTransport*>(&transport);
  if (unix_transport == nullptr)
    throw std::invalid_argument("send_descriptors: not a Unix stream transport");
  if (data.empty())
    throw std::invalid_argument("send_descriptors: empty data (descriptors travel with bytes)");
  if (fds.empty() || fds.size() > max_descriptors_per_message)
    throw std::invalid_argument("send_descriptors: " + std::to_string(fds.size()) +
                                " descriptors, must be 1.." +
                                std::to_string(max_descriptors_per_message));
  std::vector<int> copies;
  copies.reserve(fds.size());
  for (int fd : fds) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) {
      const std::error_code ec(errno, std::system_category());
      for (int c : copies) ::close(c);
      throw std::system_error(ec, "send_descriptors: descriptor " + std::to_string(fd));
    }
    copies.push_back(copy);
  }
  unix_transport->send_with_descriptors(std::move(copies), data);
}

}  // namespace torsion
