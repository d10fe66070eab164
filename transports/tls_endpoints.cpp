#include "transports/tls_endpoints.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/ip/address.hpp>

#include "transports/endpoints.hpp"
#include "transports/tls.hpp"

namespace torsion {
namespace {

constexpr std::size_t kMaxAlpnNames = 16;

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// `key` names a file (or, with allow_directory, a directory) that exists and is readable.
// Returns true for a directory.
bool check_path(const EndpointDescription& d, std::string_view key, const std::string& path,
                bool allow_directory) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0) {
    const int err = errno;
    throw d.error(key, path, "cannot be read: " + std::generic_category().message(err));
  }
  const bool directory = S_ISDIR(st.st_mode);
  if (directory && !allow_directory) throw d.error(key, path, "is a directory, not a PEM file");
  return directory;
}

std::vector<std::string> alpn_names(const EndpointDescription& d) {
  std::vector<std::string> names;
  const auto value = d.get("alpn");
  if (!value) return names;
  std::size_t start = 0;
  while (true) {
    const auto comma = value->find(',', start);
    std::string name = value->substr(start, comma == std::string::npos ? comma : comma - start);
    if (name.empty() || name.size() > 255)
      throw d.error("alpn", *value, "must be protocol names of 1..255 bytes separated by ','");
    names.push_back(std::move(name));
    if (names.size() > kMaxAlpnNames)
      throw d.error("alpn", *value, "must name at most " + std::to_string(kMaxAlpnNames) +
                                        " protocols");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return names;
}

// Which parameter a context's std::invalid_argument is about: the contexts name the role
// of the file they could not load ("private key '...'", "CA file '...'").
struct FileRole {
  const char* phrase;   // as the TlsServerContext / TlsClientContext messages say it
  std::string key;      // the endpoint parameter
  std::string value;    // its value
};

[[noreturn]] void rethrow_as_endpoint_error(const EndpointDescription& d,
                                            const std::invalid_argument& e,
                                            const std::vector<FileRole>& roles) {
  const std::string what = e.what();
  for (const auto& role : roles)
    if (!role.key.empty() && what.find(role.phrase) != std::string::npos)
      throw d.error(role.key, role.value, "could not be loaded (" + what + ")");
  throw d.error("description", d.text(), "gives a TLS configuration that was refused (" + what +
                                             ")");
}

// --- server --------------------------------------------------------------------------

class SslServerEndpoint final : public ServerEndpoint {
 public:
  SslServerEndpoint(Reactor& reactor, int port, std::string interface, TlsServerOptions options,
                    std::shared_ptr<const TlsServerContext> context)
      : reactor_(reactor), port_(port), interface_(std::move(interface)),
        options_(std::move(options)), context_(std::move(context)) {}

  using ServerEndpoint::listen;
  std::shared_ptr<ListeningPort> listen(Factory& factory, std::error_code& ec) override {
    try {
      return listen_ssl(reactor_, port_, factory, context_, interface_);
    } catch (const std::system_error& e) {  // the bind failed; nothing runs
      ec = e.code();
      return nullptr;
    }
  }

  std::string description() const override {
    std::string d = "ssl:" + std::to_string(port_);
    if (!interface_.empty()) d += ":interface=" + escape_endpoint_value(interface_);
    d += ":backlog=" + std::to_string(options_.backlog);
    d += ":privateKey=" + escape_endpoint_value(options_.private_key_file);
    d += ":certKey=" + escape_endpoint_value(options_.certificate_chain_file);
    if (!options_.extra_chain_file.empty())
      d += ":extraCertChain=" + escape_endpoint_value(options_.extra_chain_file);
    if (!options_.alpn.empty()) d += ":alpn=" + escape_endpoint_value(join(options_.alpn));
    if (options_.verify_client != VerifyClient::none) {
      const std::string& ca =
          options_.ca_directory.empty() ? options_.ca_file : options_.ca_directory;
      d += ":caCertsDir=" + escape_endpoint_value(ca);
      d += options_.verify_client == VerifyClient::required ? ":verifyClient=required"
                                                            : ":verifyClient=optional";
    }
    return d;
  }

 private:
  Reactor& reactor_;
  int port_;
  std::string interface_;
  TlsServerOptions options_;
  std::shared_ptr<const TlsServerContext> context_;
};

std::unique_ptr<ServerEndpoint> parse_ssl_server(Reactor& reactor, EndpointDescription& d) {
  d.name_positional({"port"});
  d.check_known({"port", "privateKey", "certKey", "extraCertChain", "interface", "backlog", "alpn",
                 "caCertsDir", "verifyClient"});
  const long port = d.required_integer("port", 0, 65535);
  std::string interface = d.string("interface", "");
  if (!interface.empty()) {
    std::error_code ec;
    (void)asio::ip::make_address(interface, ec);
    if (ec) throw d.error("interface", interface, "must be a numeric IPv4 or IPv6 address");
  }
  TlsServerOptions options;
  options.private_key_file = d.required("privateKey");
  check_path(d, "privateKey", options.private_key_file, false);
  options.certificate_chain_file = d.string("certKey", options.private_key_file);
  if (options.certificate_chain_file.empty()) throw d.error("certKey", "", "must not be empty");
  check_path(d, "certKey", options.certificate_chain_file, false);
  if (auto chain = d.get("extraCertChain")) {
    if (chain->empty()) throw d.error("extraCertChain", "", "must not be empty");
    check_path(d, "extraCertChain", *chain, false);
    options.extra_chain_file = *chain;
  }
  options.backlog = static_cast<int>(d.integer("backlog", 1, 65535, options.backlog));
  options.alpn = alpn_names(d);
  // Mutual TLS (torsion's addition; Twisted's ssl: server strings have no such option).
  const std::string client_cas = d.string("caCertsDir", "");
  if (d.get("caCertsDir") && client_cas.empty()) throw d.error("caCertsDir", "", "must not be empty");
  const std::string verify = d.string("verifyClient", client_cas.empty() ? "none" : "required");
  if (verify == "required")
    options.verify_client = VerifyClient::required;
  else if (verify == "optional")
    options.verify_client = VerifyClient::optional;
  else if (verify != "none")
    throw d.error("verifyClient", verify, "must be required, optional or none");
  if (options.verify_client != VerifyClient::none && client_cas.empty())
    throw d.error("verifyClient", verify,
                  "needs caCertsDir=PATH (the CAs whose client certificates are trusted)");
  if (options.verify_client == VerifyClient::none && !client_cas.empty())
    throw d.error("caCertsDir", client_cas, "is unused with verifyClient=none; leave one out");
  if (!client_cas.empty()) {
    if (check_path(d, "caCertsDir", client_cas, true))
      options.ca_directory = client_cas;
    else
      options.ca_file = client_cas;
  }
  std::shared_ptr<const TlsServerContext> context;
  try {
    context = std::make_shared<const TlsServerContext>(options);
  } catch (const std::invalid_argument& e) {
    rethrow_as_endpoint_error(d, e,
                              {{"CA ", client_cas.empty() ? "" : "caCertsDir", client_cas},
                               {"extra chain", "extraCertChain", options.extra_chain_file},
                               {"certificate chain", "certKey", options.certificate_chain_file},
                               {"private key", "privateKey", options.private_key_file}});
  }
  return std::make_unique<SslServerEndpoint>(reactor, static_cast<int>(port), std::move(interface),
                                             std::move(options), std::move(context));
}

std::unique_ptr<ServerEndpoint> refuse_tls_server(Reactor&, EndpointDescription& d) {
  throw d.error("type", d.type(),
                "is a client endpoint type only (as in Twisted); listen with "
                "'ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem'");
}

// --- clients -------------------------------------------------------------------------

// The parameter names of one client type: "ssl" uses SSL4ClientEndpoint's, "tls"
// wrapClientTLS's.
struct ClientNames {
  const char* type;
  const char* trust;        // caCertsDir / trustRoots
  const char* certificate;  // certKey / certificate
};

constexpr ClientNames kSslNames{"ssl", "caCertsDir", "certKey"};
constexpr ClientNames kTlsNames{"tls", "trustRoots", "certificate"};

class SslClientEndpoint final : public ClientEndpoint {
 public:
  SslClientEndpoint(Reactor& reactor, const ClientNames& names, std::string host, int port,
                    std::string trust, TlsClientOptions options,
                    std::shared_ptr<const TlsClientContext> context)
      : reactor_(reactor), names_(names), host_(std::move(host)), port_(port),
        trust_(std::move(trust)), options_(std::move(options)), context_(std::move(context)) {}

  std::shared_ptr<Connector> connect(ClientFactory& factory) override {
    return connect_ssl(reactor_, host_, port_, factory, context_);
  }

  std::string description() const override {
    std::string d = std::string(names_.type) + ":host=" + escape_endpoint_value(host_) +
                    ":port=" + std::to_string(port_) + ":timeout=" + format_seconds(options_.timeout);
    if (!trust_.empty()) d += std::string(":") + names_.trust + "=" + escape_endpoint_value(trust_);
    if (!options_.certificate_file.empty())
      d += std::string(":") + names_.certificate + "=" +
           escape_endpoint_value(options_.certificate_file);
    if (!options_.private_key_file.empty())
      d += ":privateKey=" + escape_endpoint_value(options_.private_key_file);
    if (!options_.server_name.empty())
      d += ":hostname=" + escape_endpoint_value(options_.server_name);
    d += options_.verify_peer ? ":verify=true" : ":verify=false";
    if (!options_.alpn.empty()) d += ":alpn=" + escape_endpoint_value(join(options_.alpn));
    return d;
  }

 private:
  Reactor& reactor_;
  const ClientNames& names_;
  std::string host_;
  int port_;
  std::string trust_;
  TlsClientOptions options_;
  std::shared_ptr<const TlsClientContext> context_;
};

std::unique_ptr<ClientEndpoint> parse_client(Reactor& reactor, EndpointDescription& d,
                                             const ClientNames& names) {
  d.name_positional({"host", "port"});
  d.check_known({"host", "port", "timeout", names.trust, names.certificate, "privateKey",
                 "hostname", "verify", "alpn"});
  std::string host = d.required("host");
  const long port = d.required_integer("port", 1, 65535);
  TlsClientOptions options;
  options.timeout = d.number("timeout", 0, 86400 * 365, options.timeout);
  const std::string trust = d.string(names.trust, "");
  if (d.get(names.trust) && trust.empty()) throw d.error(names.trust, "", "must not be empty");
  if (!trust.empty()) {
    if (check_path(d, names.trust, trust, true))
      options.ca_directory = trust;
    else
      options.ca_file = trust;
  }
  options.certificate_file = d.string(names.certificate, "");
  options.private_key_file = d.string("privateKey", "");
  if (d.get(names.certificate) && options.certificate_file.empty())
    throw d.error(names.certificate, "", "must not be empty");
  if (!options.certificate_file.empty())
    check_path(d, names.certificate, options.certificate_file, false);
  if (d.get("privateKey")) {
    if (options.private_key_file.empty()) throw d.error("privateKey", "", "must not be empty");
    if (options.certificate_file.empty())
      throw d.error("privateKey", options.private_key_file,
                    std::string("needs a client certificate too (") + names.certificate + "=...)");
    check_path(d, "privateKey", options.private_key_file, false);
  }
  options.server_name = d.string("hostname", "");
  if (d.get("hostname") && options.server_name.empty())
    throw d.error("hostname", "", "must not be empty (leave it out to verify HOST)");
  options.verify_peer = d.boolean("verify", true);
  options.alpn = alpn_names(d);
  std::shared_ptr<const TlsClientContext> context;
  try {
    context = std::make_shared<const TlsClientContext>(options);
  } catch (const std::invalid_argument& e) {
    const std::string& key = options.private_key_file.empty() ? options.certificate_file
                                                              : options.private_key_file;
    const std::string key_param = options.private_key_file.empty() ? names.certificate
                                                                   : "privateKey";
    rethrow_as_endpoint_error(d, e,
                              {{"CA ", trust.empty() ? "" : names.trust, trust},
                               {"private key", key_param, key},
                               {"certificate '", names.certificate, options.certificate_file}});
  }
  return std::make_unique<SslClientEndpoint>(reactor, names, std::move(host),
                                             static_cast<int>(port), trust, std::move(options),
                                             std::move(context));
}

}  // namespace

void register_tls_endpoints() {
  register_server_endpoint("ssl", parse_ssl_server);
  register_server_endpoint("tls", refuse_tls_server);
  register_client_endpoint("ssl", [](Reactor& reactor, EndpointDescription& d) {
    return parse_client(reactor, d, kSslNames);
  });
  register_client_endpoint("tls", [](Reactor& reactor, EndpointDescription& d) {
    return parse_client(reactor, d, kTlsNames);
  });
}

}  // namespace torsion
