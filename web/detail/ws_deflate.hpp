#pragma once
// Private: permessage-deflate (RFC 7692) for WebSocketProtocol: parsing
// Sec-WebSocket-Extensions, the server's and the client's side of the negotiation, and
// the per-connection compressor and decompressor (zlib raw deflate, behind a pointer so
// that no header includes zlib.h).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "web/http_message.hpp"
#include "web/websocket.hpp"

namespace torsion::web::detail {

// One element of a Sec-WebSocket-Extensions field: a name and its parameters (a
// parameter without "=value" has no value).
struct WsExtension {
  std::string name;
  std::vector<std::pair<std::string, std::optional<std::string>>> params;
};

// Parses every Sec-WebSocket-Extensions field of `headers` (RFC 6455 9.1: token
// *(";" token ["=" (token / quoted-string)]), comma-separated). False on a syntax error.
bool parse_ws_extensions(const Headers& headers, std::vector<WsExtension>& out);

// What was agreed, from this side's point of view.
struct WsDeflateAgreement {
  int compress_bits = 15;         // this side's window; 0: send uncompressed (8 was agreed)
  bool compress_reset = false;    // no context takeover for what this side sends
  bool decompress_reset = false;  // the peer resets its context after every message
};

// Throws std::invalid_argument naming `who` for options out of range.
void check_deflate_options(const WsDeflateOptions& options, const char* who);

// Server: the Sec-WebSocket-Extensions value accepting the first acceptable
// permessage-deflate offer in `request`, or nullopt (none offered, none acceptable, or
// disabled). `agreed` is filled when it accepts.
std::optional<std::string> ws_deflate_accept(const Headers& request, const WsDeflateOptions& options,
                                             WsDeflateAgreement& agreed);

// Client: the offer to send ("" when disabled).
std::string ws_deflate_offer(const WsDeflateOptions& options);
// Client: checks the server's Sec-WebSocket-Extensions fields against the offer. Returns
// "" and fills `agreed` (and `accepted`: the server accepted) when they are valid, or
// what is wrong.
std::string ws_deflate_check(const Headers& response, const WsDeflateOptions& options,
                             WsDeflateAgreement& agreed, bool& accepted);

// Compresses whole messages (RFC 7692 7.2.1: a sync flush, its 4-byte tail removed).
class WsDeflater {
 public:
  WsDeflater(int window_bits, int level, int mem_level, bool reset);
  ~WsDeflater();
  WsDeflater(const WsDeflater&) = delete;
  WsDeflater& operator=(const WsDeflater&) = delete;
  // Replaces `out` with the compressed form of `message`.
  void compress(std::string_view message, std::string& out);

 private:
  struct State;
  std::unique_ptr<State> s_;
  bool reset_;
};

// Decompresses messages fed in pieces, never past a limit (no zip bombs: it stops as
// soon as the output would pass it, having made at most one chunk more).
class WsInflater {
 public:
  enum class Result { ok, too_big, corrupt };
  explicit WsInflater(bool reset);
  ~WsInflater();
  WsInflater(const WsInflater&) = delete;
  WsInflater& operator=(const WsInflater&) = delete;
  // Inflates a piece of the current message's payload, appending to `out`, which must not
  // grow past `limit` bytes.
  Result feed(std::string_view piece, std::string& out, std::uint64_t limit);
  // The message's payload ended (adds the removed tail and flushes).
  Result finish(std::string& out, std::uint64_t limit);

 private:
  Result run(std::string_view piece, std::string& out, std::uint64_t limit);
  struct State;
  std::unique_ptr<State> s_;
  bool reset_;
};

// A connection's deflate state; the compressor and decompressor are made at first use.
struct WsDeflateSession {
  WsDeflateAgreement agreed;
  WsDeflateOptions options;
  std::unique_ptr<WsDeflater> deflater;
  std::unique_ptr<WsInflater> inflater;
  std::string buffer;  // the compressed form of the message being sent
};

}  // namespace torsion::web::detail
