// libFuzzer target for the endpoint description parser (framework/endpoints.hpp) and the
// typed parsers behind server_from_string / client_from_string (tcp:, unix:).
// Every input must either parse or throw EndpointError; a parsed description must survive
// every getter, and re-escaping its values must parse back to the same values. A typed
// endpoint is made or refused with EndpointError (nothing else escapes), and its own
// description() makes an endpoint with the same description.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "framework/endpoints.hpp"
#include "framework/reactor.hpp"
#include "transports/endpoints.hpp"

namespace {

// Makes the endpoint `text` describes (nothing is opened: endpoints hold only settings),
// and checks that its description() describes the same endpoint.
template <class Make>
void check_typed(std::string_view text, Make make) {
  std::string description;
  try {
    description = make(text)->description();
  } catch (const torsion::EndpointError&) {
    return;
  }
  if (make(description)->description() != description) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static torsion::Reactor reactor;
  check_typed(text, [](std::string_view t) { return torsion::server_from_string(reactor, t); });
  check_typed(text, [](std::string_view t) { return torsion::client_from_string(reactor, t); });
  torsion::EndpointDescription d;
  try {
    d = torsion::EndpointDescription::parse(text);
  } catch (const torsion::EndpointError&) {
    return 0;
  }
  if (d.type().empty() || text.size() > torsion::kMaxEndpointDescription) std::abort();
  std::string rebuilt = torsion::escape_endpoint_value(d.type());
  for (const auto& p : d.positional()) rebuilt += ":" + torsion::escape_endpoint_value(p);
  for (const auto& [key, value] : d.keywords()) {
    rebuilt += ":" + torsion::escape_endpoint_value(key) + "=" + torsion::escape_endpoint_value(value);
    try {
      (void)d.integer(key, -1000, 1000, 0);
    } catch (const torsion::EndpointError&) {
    }
    try {
      (void)d.number(key, -1e9, 1e9, 0);
    } catch (const torsion::EndpointError&) {
    }
    try {
      (void)d.boolean(key, false);
    } catch (const torsion::EndpointError&) {
    }
  }
  // Escaping may lengthen the text beyond the limit; only compare when it fits.
  if (rebuilt.size() <= torsion::kMaxEndpointDescription) {
    const auto again = torsion::EndpointDescription::parse(rebuilt);
    if (again.type() != d.type() || again.positional() != d.positional() ||
        again.keywords() != d.keywords())
      std::abort();
  }
  try {
    d.name_positional({"a", "b"});
    d.check_known({"a", "b"});
  } catch (const torsion::EndpointError&) {
  }
  return 0;
}
