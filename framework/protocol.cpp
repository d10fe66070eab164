#include "framework/protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/detail/tracked.hpp"
#include "framework/listening_port.hpp"
#include "framework/log.hpp"

namespace torsion {

Protocol::~Protocol() = default;

Transport& Protocol::transport() const {
  if (!transport_)
    throw std::logic_error("Protocol::transport(): not connected (outside "
                           "connection_made..connection_lost)");
  return *transport_;
}

struct Protocol::Life {
  std::vector<std::shared_ptr<const void>> owners;
};

std::weak_ptr<void> Protocol::life_token() const {
  if (!life_) life_ = std::make_shared<Life>();
  return life_;
}

namespace detail {
namespace {
thread_local const ProtocolScope* innermost = nullptr;
}  // namespace

ProtocolScope::ProtocolScope(const Protocol* protocol) noexcept
    : protocol_(protocol),
      derived_(protocol ? dynamic_cast<const void*>(protocol) : nullptr),
      outer_(innermost),
      pushed_(protocol != nullptr) {
  if (pushed_) innermost = this;
}

ProtocolScope::~ProtocolScope() {
  if (pushed_) innermost = outer_;
}

const ProtocolScope* ProtocolScope::current() noexcept { return innermost; }

Owner owner_in(const unsigned char* bytes, std::size_t size) {
  constexpr std::size_t word = sizeof(const void*);
  // Captured pointers sit at pointer-aligned offsets; start at the first such byte.
  const std::size_t misaligned = reinterpret_cast<std::uintptr_t>(bytes) % alignof(const void*);
  const std::size_t first = misaligned == 0 ? 0 : alignof(const void*) - misaligned;
  for (const ProtocolScope* s = innermost; s != nullptr; s = s->outer_) {
    const void* const addresses[2] = {s->protocol_, s->derived_};
    for (const void* const& address : addresses)
      for (std::size_t at = first; at + word <= size; at += alignof(const void*))
        if (std::memcmp(bytes + at, &address, word) == 0)
          return Owner{s->protocol_->life_token(), s->protocol_};
  }
  return {};
}

void data_to(Protocol& protocol, std::string_view data) {
  const ProtocolScope scope(&protocol);
  protocol.data_received(data);
}

bool eof_to(Protocol& protocol) {
  const ProtocolScope scope(&protocol);
  return protocol.eof_received();
}

}  // namespace detail

void Protocol::keep_alive(std::shared_ptr<const void> owner) {
  if (!life_) life_ = std::make_shared<Life>();
  life_->owners.push_back(std::move(owner));
}

void Protocol::make_connection(Transport& transport) {
  transport_ = &transport;
  const detail::ProtocolScope scope(this);  // binds what it hands out (protocol_scope.hpp)
  connection_made();
}

void Protocol::end_connection(const Reason& reason) {
  struct Detach {
    Transport*& t;
    ~Detach() { t = nullptr; }
  } detach{transport_};
  const detail::ProtocolScope scope(this);
  connection_lost(reason);
}

// What a factory knows of its users: weak references only, pruned as they expire.
struct Factory::Links {
  struct Built {
    std::weak_ptr<void> life;
    Protocol* protocol;
  };
  // A factory shared by the reactors of a pool (listen_tcp_pool) is used from several
  // threads: everything here, and the factory's user count, is under this lock.
  std::mutex mutex;
  std::vector<Built> connections;
  std::vector<std::weak_ptr<ListeningPort>> ports;
  std::size_t prune_at = 16;

  // Drops the entries of closed connections once the list has doubled since the last
  // time: amortised constant per connection.
  void prune() {
    if (connections.size() < prune_at) return;
    std::erase_if(connections, [](const Built& b) { return b.life.expired(); });
    prune_at = std::max<std::size_t>(16, connections.size() * 2);
  }
};

namespace {

// Closes the connection under `transport` now, without calling back: the bottom transport
// (beneath every wrapper) is released as ~Reactor releases it, which destroys the protocols
// stacked on it.
void log_hook_exception(const char* what) {
  log(LogLevel::error, std::string("exception in ") + what + ": " +
                           describe_error(std::current_exception()));
}

void release_connection(Transport& transport) {
  Transport* bottom = &transport;
  while (Transport* lower = bottom->lower_transport()) bottom = lower;
  if (auto* tracked = dynamic_cast<detail::Tracked*>(bottom))
    tracked->release_tracked();
  else
    bottom->abort_connection();
}

}  // namespace

Factory::Factory() : links_(std::make_shared<Links>()) {}
Factory::Factory(const Factory&) : links_(std::make_shared<Links>()) {}
Factory& Factory::operator=(const Factory&) { return *this; }

Factory::~Factory() {
  // Expire the token first (ports and connectors then call nothing on this factory, which
  // is being destroyed), keeping the lists.
  std::vector<Links::Built> connections;
  std::vector<std::weak_ptr<ListeningPort>> ports;
  {
    std::lock_guard lock(links_->mutex);
    connections = std::move(links_->connections);
    ports = std::move(links_->ports);
  }
  links_.reset();
  for (auto& weak : ports)
    if (auto port = weak.lock()) port->stop_listening();
  std::size_t closed = 0;
  for (auto& built : connections) {
    if (built.life.expired() || !built.protocol->has_transport()) continue;
    ++closed;
    release_connection(built.protocol->transport());
  }
  if (closed > 0 && log_enabled(LogLevel::debug))
    log(LogLevel::debug, "a factory was destroyed with " + std::to_string(closed) +
                             " connection(s) open: closed without connection_lost");
}

void Factory::do_start() {
  {
    std::lock_guard lock(links_->mutex);
    if (users_++ > 0) return;
  }
  try {
    start_factory();
  } catch (...) {
    log_hook_exception("start_factory");
  }
}

void Factory::do_stop() {
  {
    std::lock_guard lock(links_->mutex);
    if (users_ == 0 || --users_ > 0) return;
  }
  try {
    stop_factory();
  } catch (...) {
    log_hook_exception("stop_factory");
  }
}

std::unique_ptr<Protocol> Factory::build_tracked(const Address& peer) {
  auto protocol = build_protocol(peer);
  if (protocol) track_connection(*protocol);
  return protocol;
}

void Factory::track_connection(Protocol& protocol) {
  std::weak_ptr<void> life = protocol.life_token();
  std::lock_guard lock(links_->mutex);
  links_->prune();
  links_->connections.push_back({std::move(life), &protocol});
}

void Factory::track_port(const std::shared_ptr<ListeningPort>& port) {
  std::lock_guard lock(links_->mutex);
  std::erase_if(links_->ports, [](const auto& w) { return w.expired(); });
  links_->ports.push_back(port);
}

Connector::~Connector() = default;

}  // namespace torsion

#include "framework/listening_port.hpp"

namespace torsion {
ListeningPort::~ListeningPort() = default;
}  // namespace torsion
