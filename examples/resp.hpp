#pragma once
// RequestReceiver: reads Redis requests (RESP2) on a LineReceiver, the idiomatic way:
// header lines in line mode, each bulk argument with expect_raw. Shared by
// examples/kv_server and its fuzz target (tests/fuzz/resp_fuzz.cpp).
//
// What it accepts is what redis-server 7.0 accepts, with its error messages:
//   *<n>\r\n then n times $<len>\r\n<len bytes>\r\n   (a multibulk request)
//   anything else up to "\n" (an inline request: words, "double" and 'single' quotes)
// Every length has a limit (Limits); going over one sends redis-server's
// "-ERR Protocol error: ..." and closes the connection after the reply, as it does.

#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/line_receiver.hpp"

namespace torsion::examples::resp {

/// How much one request may hold. The defaults bound a connection's memory to about
/// max_request bytes plus one line.
struct Limits {
  std::size_t max_inline = 64 * 1024;      ///< an inline request or header line (redis: 64 KiB)
  std::size_t max_bulk = 64 * 1024 * 1024;  ///< one bulk argument (redis: 512 MiB)
  std::size_t max_args = 1024 * 1024;       ///< arguments in one multibulk request
  std::size_t max_request = 64 * 1024 * 1024;  ///< one request's bytes, 32 more per argument
};

/// Parses a strict decimal integer as redis's string2ll does: no sign other than a
/// leading '-', no leading zeros, no spaces, within int64.
inline bool parse_integer(std::string_view s, std::int64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() > 1 && (s[0] == '0' || (s[0] == '-' && s[1] == '0'))) return false;
  if (s == "-") return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

/// Splits an inline request into arguments as redis's sdssplitargs does. Returns false
/// for unbalanced quotes.
inline bool split_inline(std::string_view line, std::vector<std::string>& args, std::size_t& argc) {
  const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  const auto hex_value = [](char c) {
    return c <= '9' ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
  };
  std::size_t i = 0;
  const std::size_t n = line.find('\0') == std::string_view::npos ? line.size() : line.find('\0');
  const auto at = [&](std::size_t k) { return k < n ? line[k] : '\0'; };
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  for (;;) {
    while (i < n && is_space(line[i])) ++i;
    if (i >= n) return true;
    if (argc == args.size()) args.emplace_back();
    std::string& current = args[argc++];
    current.clear();
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      const char c = at(i);
      if (in_double) {
        if (c == '\\' && at(i + 1) == 'x' && hex(at(i + 2)) && hex(at(i + 3))) {
          current += static_cast<char>(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3)));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          const char e = at(i);
          current += e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == 'b' ? '\b'
                   : e == 'a' ? '\a' : e;
        } else if (c == '"') {
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;  // "a"b
          done = true;
        } else if (c == '\0') {
          return false;  // no closing quote
        } else {
          current += c;
        }
      } else if (in_single) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          current += '\'';
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current += c;
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
        done = true;
      } else if (c == '"') {
        in_double = true;
      } else if (c == '\'') {
        in_single = true;
      } else {
        current += c;
      }
      if (i < n) ++i;
    }
  }
}

/// A LineReceiver that turns RESP2 requests into calls to command_received. Lines end in
/// "\n" (a '\r' before it is dropped), as redis reads them.
class RequestReceiver : public torsion::LineReceiver {
 public:
  explicit RequestReceiver(Limits limits = {})
      : torsion::LineReceiver("\n", limits.max_inline), limits_(limits) {}

  /// One request; `args` is never empty. The strings are the receiver's and are reused
  /// for the next request: move one out to keep it.
  virtual void command_received(std::span<std::string> args) = 0;

  /// The peer broke the protocol or a limit: `message` is redis-server's wording (without
  /// "ERR "), or empty when redis closes without a reply (request over max_request). The
  /// default writes "-ERR <message>" and closes after the reply.
  virtual void protocol_error(std::string_view message) {
    if (!message.empty()) transport().write("-ERR " + std::string(message) + "\r\n");
    transport().lose_connection();
  }

  void line_received(std::string_view line) override {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (state_ == State::bulk_header) return bulk_header(line);
    if (!line.empty() && line[0] == '*') return multibulk_header(line.substr(1));
    argc_ = 0;
    if (!split_inline(line, args_, argc_))
      return protocol_error("Protocol error: unbalanced quotes in request");
    if (argc_ > 0) deliver();
  }

  void raw_data_received(std::string_view data) override {
    std::string& arg = args_[argc_ - 1];
    arg.append(data);
    if (raw_remaining() > 0) return;
    arg.resize(arg.size() - 2);  // redis skips the two bytes after a bulk, unchecked
    if (--args_left_ == 0) {
      deliver();
    } else {
      state_ = State::bulk_header;
    }
  }

  void line_length_exceeded(std::string_view data) override {
    if (state_ == State::bulk_header)
      protocol_error("Protocol error: too big bulk count string");
    else if (!data.empty() && data[0] == '*')
      protocol_error("Protocol error: too big mbulk count string");
    else
      protocol_error("Protocol error: too big inline request");
  }

 private:
  enum class State { request, bulk_header };

  void multibulk_header(std::string_view count) {
    std::int64_t n = 0;
    if (!parse_integer(count, n) || n > static_cast<std::int64_t>(limits_.max_args))
      return protocol_error("Protocol error: invalid multibulk length");
    if (n <= 0) return;  // "*0" and "*-1": no request
    argc_ = 0;
    args_left_ = static_cast<std::size_t>(n);
    request_bytes_ = 0;
    state_ = State::bulk_header;
  }

  void bulk_header(std::string_view line) {
    if (line.empty() || line[0] != '$') {
      const char got = line.empty() ? '\r' : line[0];
      return protocol_error(std::string("Protocol error: expected '$', got '") + got + "'");
    }
    std::int64_t n = 0;
    if (!parse_integer(line.substr(1), n) || n < 0 ||
        static_cast<std::uint64_t>(n) > limits_.max_bulk)
      return protocol_error("Protocol error: invalid bulk length");
    const auto size = static_cast<std::size_t>(n);
    request_bytes_ += size + sizeof(std::string);
    if (request_bytes_ > limits_.max_request) return protocol_error({});
    if (argc_ == args_.size()) args_.emplace_back();
    args_[argc_++].clear();
    state_ = State::request;  // raw_data_received sets bulk_header for the next one
    expect_raw(size + 2);
  }

  void deliver() {
    state_ = State::request;
    const std::size_t argc = argc_;
    argc_ = 0;
    command_received(std::span<std::string>(args_.data(), argc));
    // Give back what one big request took, so an idle connection stays small.
    if (args_.size() > 64) {
      args_.resize(64);
      args_.shrink_to_fit();
    }
    for (std::size_t i = 0; i < argc && i < args_.size(); ++i)
      if (args_[i].capacity() > 4096) std::string().swap(args_[i]);
  }

  Limits limits_;
  State state_ = State::request;
  std::vector<std::string> args_;  // reused: args_[0, argc_) is the request being read
  std::size_t argc_ = 0;
  std::size_t args_left_ = 0;
  std::size_t request_bytes_ = 0;
};

}  // namespace torsion::examples::resp
