#pragma once
/// \file
/// The PROXY protocol (HAProxy, versions 1 and 2), client side: a torsion proxy or load
/// balancer tells its backend who the real client is, as HAProxy's `send-proxy` and
/// `send-proxy-v2` do. The header is the ProxyHeader that parse_proxy_header returns
/// (protocols/proxy_protocol.hpp), so what one side writes the other side reads back.

#include <memory>
#include <string>

#include "framework/address.hpp"
#include "framework/protocol.hpp"
#include "protocols/proxy_protocol.hpp"
#include "protocols/wrapping.hpp"

namespace torsion {

/// The bytes of `header`, in the form header.version names (1 or 2), ready to be the first
/// bytes of a connection. parse_proxy_header reads them back as `header` (addresses in
/// canonical form; a v1 header with local set reads back as "UNKNOWN").
///
/// Version 1: "PROXY TCP4 ..." when both addresses are IPv4, "PROXY TCP6 ..." when either
/// is IPv6 (an IPv4 one then written IPv4-mapped, ::ffff:a.b.c.d, as HAProxy does), and
/// "PROXY UNKNOWN" when `local` is set. Version 2: the PROXY command over TCP with the
/// same family rule, or over a Unix stream socket when both addresses are Unix paths
/// (at most 108 bytes each, written as they are, NUL-padded);
/// the LOCAL command with no address (AF_UNSPEC) when `local` is set. Then every TLV of
/// `tlvs` in order, and, if `ssl` is set and `tlvs` holds no SSL TLV, the SSL TLV encoded
/// from `ssl` (client bits, verify, sub-TLVs). A CRC32c TLV in `tlvs` (at most one) is
/// filled in with the checksum of the finished header, whatever value it held.
///
/// Throws std::invalid_argument when the header cannot be written: a version other than
/// 1 or 2, an address that is not numeric IP (or, for v2, one Unix address beside an IP
/// one, or a Unix path over 108 bytes), TLVs or ssl in a v1 header, a TLV value over
/// 65535 bytes, a unique id over 128 bytes, a CRC32c TLV whose value is not 4 bytes or a second one, or a
/// v2 header over 16 + 65535 bytes.
std::string format_proxy_header(const ProxyHeader& header);

/// A header saying that `client` connected to `server`, in `version` (1 or 2). For a
/// torsion proxy that forwards a connection it accepted, pass that connection's
/// transport().get_peer() and get_host(): behind a ProxyProtocolFactory those are
/// already the header's addresses, so the real client travels on through a chain of
/// proxies.
ProxyHeader make_proxy_header(const Address& client, const Address& server, int version = 2);

/// A ClientFactory that makes every connection it serves start with a PROXY header:
/// connect_tcp(reactor, backend, port, sender) with `sender` wrapping the factory that
/// builds the real protocol. The header is written to the connection before the wrapped
/// protocol's connection_made runs, so it precedes anything the protocol writes; after
/// that the wrapper only forwards (get_peer() and get_host() are the connection's own).
/// started_connecting, client_connection_failed and client_connection_lost go to the
/// wrapped factory. As any factory, it must outlive the connections it built (destroying
/// it first detaches them safely), and `wrapped` must outlive it.
class SendProxyHeaderFactory : public ClientFactory {
 public:
  /// Sends `header` on every connection. Throws std::invalid_argument when
  /// format_proxy_header would (nothing is connected then).
  SendProxyHeaderFactory(ClientFactory& wrapped, const ProxyHeader& header);
  ~SendProxyHeaderFactory() override;

  /// Builds the wrapped factory's protocol for `peer` behind the header-writing wrapper;
  /// null when the wrapped factory refuses.
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;
  void started_connecting(Connector& connector) override;
  void client_connection_failed(Connector& connector, const Reason& reason) override;
  void client_connection_lost(Connector& connector, const Reason& reason) override;

  /// The bytes every connection starts with.
  const std::string& header_bytes() const noexcept;

 private:
  class Wrapping;
  ClientFactory& wrapped_;
  std::unique_ptr<Wrapping> wrapping_;
};

}  // namespace torsion
