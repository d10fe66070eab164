#include "protocols/wrapping.hpp"

#include <stdexcept>
#include <utility>

namespace torsion {

// --- ProtocolWrapper -------------------------------------------------------------------

ProtocolWrapper::ProtocolWrapper(WrappingFactory& factory, std::unique_ptr<Protocol> wrapped,
                                 Address peer)
    : factory_(&factory), wrapped_(std::move(wrapped)), peer_(std::move(peer)) {
  factory_->add(*this);
}

ProtocolWrapper::~ProtocolWrapper() {
  if (factory_) factory_->remove(*this);
}

WrappingFactory& ProtocolWrapper::factory() const {
  if (!factory_)
    throw std::logic_error(
        "ProtocolWrapper::factory: the factory was destroyed while this connection lived");
  return *factory_;
}

void ProtocolWrapper::attach(std::unique_ptr<Protocol> wrapped) {
  if (wrapped_) throw std::logic_error("ProtocolWrapper::attach: a protocol is already attached");
  wrapped_ = std::move(wrapped);
  if (wrapped_ && has_transport() && transport().connected()) {
    wrapped_made_ = true;
    wrapped_->make_connection(*this);
  }
}

void ProtocolWrapper::connection_made() {
  if (!wrapped_) return;
  wrapped_made_ = true;
  wrapped_->make_connection(*this);
}

// data_to and eof_to bind what the wrapped protocol hands out meanwhile to its life
// (framework/detail/protocol_scope.hpp).
void ProtocolWrapper::data_received(std::string_view data) {
  if (!wrapped_made_) return;
  detail::data_to(*wrapped_, data);
}

bool ProtocolWrapper::eof_received() {
  if (!wrapped_made_) return false;
  return detail::eof_to(*wrapped_);
}

void ProtocolWrapper::connection_lost(const Reason& reason) {
  if (!wrapped_made_) return;
  wrapped_made_ = false;
  wrapped_->end_connection(reason);
}

void ProtocolWrapper::lose_connection() { transport().lose_connection(); }
void ProtocolWrapper::abort_connection() { transport().abort_connection(); }
void ProtocolWrapper::lose_write_connection() { transport().lose_write_connection(); }
Address ProtocolWrapper::get_peer() const { return transport().get_peer(); }
Address ProtocolWrapper::get_host() const { return transport().get_host(); }
std::size_t ProtocolWrapper::buffer_size() const { return transport().buffer_size(); }
void ProtocolWrapper::register_producer(Producer& producer, bool streaming) {
  transport().register_producer(producer, streaming);
}
void ProtocolWrapper::unregister_producer() { transport().unregister_producer(); }
void ProtocolWrapper::set_write_buffer_limits(std::size_t high, std::size_t low) {
  transport().set_write_buffer_limits(high, low);
}
WriteBufferLimits ProtocolWrapper::write_buffer_limits() const {
  return transport().write_buffer_limits();
}
void ProtocolWrapper::set_pause_reading_when_full(bool enabled) {
  transport().set_pause_reading_when_full(enabled);
}
bool ProtocolWrapper::pauses_reading_when_full() const {
  return has_transport() && transport().pauses_reading_when_full();
}
bool ProtocolWrapper::connected() const { return has_transport() && transport().connected(); }
int ProtocolWrapper::native_handle() const {
  return has_transport() ? transport().native_handle() : -1;
}
Transport* ProtocolWrapper::lower_transport() const {
  return has_transport() ? &transport() : nullptr;
}
void ProtocolWrapper::pause_producing() { transport().pause_producing(); }
void ProtocolWrapper::resume_producing() { transport().resume_producing(); }
void ProtocolWrapper::stop_producing() { transport().stop_producing(); }
void ProtocolWrapper::write_bytes(std::string_view data) { transport().write(data); }
void ProtocolWrapper::write_owned(std::string&& data) { transport().write(std::move(data)); }
void ProtocolWrapper::write_parts(std::span<const std::string_view> parts) {
  transport().write_sequence(parts);
}

// --- WrappingFactory -------------------------------------------------------------------

WrappingFactory::WrappingFactory(Factory& wrapped) : wrapped_(wrapped) {}

WrappingFactory::~WrappingFactory() {
  for (ProtocolWrapper* w : wrappers_) w->factory_ = nullptr;
}

std::unique_ptr<Protocol> WrappingFactory::build_protocol(const Address& peer) {
  if (!allow(peer)) {
    ++refused_;
    return nullptr;
  }
  std::unique_ptr<Protocol> inner = wrapped_.build_tracked(peer);
  if (!inner) return nullptr;
  return wrap(std::move(inner), peer);
}

bool WrappingFactory::allow(const Address& peer) {
  (void)peer;
  return true;
}

std::unique_ptr<ProtocolWrapper> WrappingFactory::wrap(std::unique_ptr<Protocol> inner,
                                                       const Address& peer) {
  return std::make_unique<ProtocolWrapper>(*this, std::move(inner), peer);
}

void WrappingFactory::registered(ProtocolWrapper& wrapper) { (void)wrapper; }
void WrappingFactory::unregistered(ProtocolWrapper& wrapper) { (void)wrapper; }

void WrappingFactory::add(ProtocolWrapper& wrapper) {
  wrapper.index_ = wrappers_.size();
  wrappers_.push_back(&wrapper);
  registered(wrapper);
}

void WrappingFactory::remove(ProtocolWrapper& wrapper) {
  const std::size_t i = wrapper.index_;
  if (i >= wrappers_.size() || wrappers_[i] != &wrapper) return;
  wrappers_[i] = wrappers_.back();
  wrappers_[i]->index_ = i;
  wrappers_.pop_back();
  unregistered(wrapper);
}

}  // namespace torsion
