#pragma once
/// \file
/// The `ssl:` and `tls:` endpoint types, for server_from_string and client_from_string
/// (transports/endpoints.hpp). They live in the torsion_tls library (meson:
/// torsion_tls_dep), so that only programs that use TLS link OpenSSL, and exist once
/// register_tls_endpoints() has run.
///
/// Server "ssl" (Twisted's names; PORT may also be `port=PORT`):
///
///     ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem][:extraCertChain=CHAIN.pem]
///         [:interface=ADDR][:backlog=N][:alpn=P1,P2]
///
///  - privateKey: PEM private key (required); certKey: PEM certificate followed by its
///    chain (default: read from the privateKey file, as Twisted does); extraCertChain:
///    PEM file of more chain certificates; interface: numeric address to bind (default
///    every IPv4 interface); backlog: 1..65535 (default 511); alpn: protocols offered,
///    most preferred first, comma-separated.
///
/// Clients "ssl" (Twisted's SSL4ClientEndpoint names) and "tls" (Twisted's wrapClientTLS
/// names), with host and port positional or as `host=`/`port=`:
///
///     ssl:HOST:PORT[:caCertsDir=PATH][:certKey=CERT.pem][:privateKey=KEY.pem]
///         [:timeout=S][:hostname=NAME][:verify=BOOL][:alpn=P1,P2]
///     tls:HOST:PORT[:trustRoots=PATH][:certificate=CERT.pem][:privateKey=KEY.pem]
///         [:timeout=S][:hostname=NAME][:verify=BOOL][:alpn=P1,P2]
///
///  - caCertsDir / trustRoots: the certificate authorities to trust: a directory, whose
///    every *.pem file is loaded (as in Twisted), or a single PEM file (torsion's
///    addition); default: the system's store. The server is always verified (chain and
///    name) unless `verify=false` is written: for tests and debugging only.
///  - certKey / certificate and privateKey: a client certificate, presented when the
///    server asks (the key defaults to the certificate file); timeout: seconds for
///    resolving, connecting and the handshake together (default 30, 0 for none);
///    hostname: the name sent as SNI and verified (default: HOST).
///
/// Every file is loaded when the description is parsed, so a missing or bad file is an
/// EndpointError from server_from_string / client_from_string naming the parameter and
/// the path. The endpoint owns its TlsServerContext / TlsClientContext and shares it with
/// every port, connector and handshake it starts, so the endpoint may be dropped at once:
/// `server_from_string(reactor, "ssl:443:privateKey=k.pem")->listen(factory)` is fine.
///
/// `tls:` is a client type only (as in Twisted); server_from_string on it throws an
/// EndpointError pointing at `ssl:`.

namespace torsion {

/// Adds the "ssl" server type and the "ssl" and "tls" client types to the endpoint
/// registry. Call it once at start-up, before parsing a description that uses them;
/// calling it again is harmless (the same parsers are put back). Thread-safe.
void register_tls_endpoints();

}  // namespace torsion
