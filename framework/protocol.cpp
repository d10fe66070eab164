#include "framework/protocol.hpp"

#include <stdexcept>

namespace torsion {

Protocol::~Protocol() = default;

Transport& Protocol::transport() const {
  if (!transport_)
    throw std::logic_error("Protocol::transport(): not connected (outside "
                           "connection_made..connection_lost)");
  return *transport_;
}

std::weak_ptr<void> Protocol::life_token() const {
  if (!life_) life_ = std::make_shared<char>();
  return life_;
}

void Protocol::make_connection(Transport& transport) {
  transport_ = &transport;
  connection_made();
}

void Protocol::end_connection(const Reason& reason) {
  struct Detach {
    Transport*& t;
    ~Detach() { t = nullptr; }
  } detach{transport_};
  connection_lost(reason);
}

Factory::~Factory() = default;
Connector::~Connector() = default;

}  // namespace torsion

#include "framework/listening_port.hpp"

namespace torsion {
ListeningPort::~ListeningPort() = default;
}  // namespace torsion
