#include "transports/listen_stream.hpp"

#include <deque>
#include <stdexcept>
#include <string>

#include "framework/listening_port.hpp"
#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/task_group.hpp"

namespace torsion {

StreamServer::~StreamServer() = default;

namespace {

// The server: the Factory its port uses, and the set of running handlers. Kept alive by
// its shutdown trigger (the reactor holds it) until closed, and by its handlers' stream
// callbacks, so that the port's factory and the handlers' bookkeeping never dangle.
class Server final : public StreamServer,
                     public Factory,
                     public std::enable_shared_from_this<Server> {
 public:
  Server(Reactor& reactor, StreamHandler handler, ListenStreamOptions options)
      : reactor_(reactor), handler_(std::move(handler)), options_(options) {}

  void start(ServerEndpoint& endpoint) {
    port_ = endpoint.listen(*this);
    trigger_ = reactor_.add_shutdown_trigger(ShutdownPhase::during,
                                             [self = shared_from_this()] { return self->close(); });
  }

  // --- Factory ---------------------------------------------------------------------
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    if (closing_) return nullptr;
    if (children_->running() + waiting_.size() + pending_ >=
        options_.max_handlers + options_.max_waiting) {
      ++refused_;
      return nullptr;
    }
    ++pending_;
    std::weak_ptr<Server> weak = shared_from_this();
    return std::make_unique<StreamProtocol>(
        reactor_,
        [weak](Stream s) {
          if (auto self = weak.lock()) self->admit(std::move(s));
          // else: the server is gone; dropping the stream closes the connection
        },
        options_.stream);
  }

  // --- StreamServer ----------------------------------------------------------------
  Address get_host() const override { return port_->get_host(); }
  std::size_t handlers() const override { return children_->running(); }
  std::size_t waiting() const override { return waiting_.size(); }
  std::uint64_t refused() const override { return refused_; }
  void stop_listening() override {
    if (port_) port_->stop_listening();
  }

  Deferred<void> close() override {
    closing_ = true;
    stop_listening();
    waiting_.clear();  // their Streams close the connections
    children_->cancel_all();
    Deferred<void> done;
    children_->when_idle([done, weak = weak_from_this()]() mutable {
      if (auto self = weak.lock()) self->forget_trigger();
      done.callback();
    });
    return done;
  }

 private:
  void admit(Stream s) {
    --pending_;
    if (closing_) return;
    if (children_->running() < options_.max_handlers)
      run(std::move(s));
    else
      waiting_.push_back(std::move(s));
  }

  void run(Stream s) {
    Task<void> task = handler_(std::move(s));
    children_->adopt(task.deferred(), [weak = weak_from_this(), &reactor = reactor_](Outcome<void>&& o) {
      // A ConnectionError that escapes the handler is the peer going away (a reset, a
      // broken pipe): ordinary for a server, so info; anything else is a server error.
      if (!o.ok() && !error_is<CancelledError>(o.error())) {
        if (error_is<ConnectionError>(o.error()))
          log(LogLevel::info, "listen_stream: a peer went away: " + describe_error(o.error()));
        else
          log(LogLevel::error,
              "listen_stream: a connection's handler failed: " + describe_error(o.error()));
      }
      // Start a waiting connection from the loop, once this handler no longer counts.
      reactor.call_soon([weak] {
        if (auto self = weak.lock()) self->run_waiting();
      });
    });
  }

  void run_waiting() {
    while (!closing_ && !waiting_.empty() && children_->running() < options_.max_handlers) {
      Stream s = std::move(waiting_.front());
      waiting_.pop_front();
      run(std::move(s));
    }
  }

  // Closed and idle: the reactor need not keep the server any more. Not from inside the
  // trigger itself (close() may run as the trigger): from the loop.
  void forget_trigger() {
    if (trigger_ == 0) return;
    reactor_.call_soon([&reactor = reactor_, id = trigger_] { reactor.remove_shutdown_trigger(id); });
    trigger_ = 0;
  }

  Reactor& reactor_;
  StreamHandler handler_;
  ListenStreamOptions options_;
  std::shared_ptr<ListeningPort> port_;
  std::shared_ptr<detail::ChildSet> children_ = std::make_shared<detail::ChildSet>();
  std::deque<Stream> waiting_;
  std::size_t pending_ = 0;  // protocols built whose Stream has not arrived yet
  std::uint64_t refused_ = 0;
  std::uint64_t trigger_ = 0;
  bool closing_ = false;
};

}  // namespace

std::shared_ptr<StreamServer> listen_stream_with(Reactor& reactor, ServerEndpoint& endpoint,
                                                 StreamHandler handler, ListenStreamOptions options) {
  if (options.max_handlers == 0)
    throw std::invalid_argument("listen_stream: max_handlers must be >= 1");
  if (!handler) throw std::invalid_argument("listen_stream: empty handler");
  auto server = std::make_shared<Server>(reactor, std::move(handler), options);
  server->start(endpoint);
  return server;
}

}  // namespace torsion
