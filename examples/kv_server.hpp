#pragma once
// The key-value store behind examples/kv_server: a Redis-compatible (RESP2) server for
// PING, ECHO, SET (EX, PX, NX, XX), GET, DEL, INCR, EXISTS and MGET, answering as
// redis-server 7.0 does, byte for byte. Keys with a time to live expire on reactor timers.
// tests/examples/kv_server_test.cpp runs it on a StringTransport and a manual clock;
// tests/examples/run.sh runs the program against redis-cli and redis-server.

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "examples/resp.hpp"
#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"

namespace torsion::examples {

/// The keys and values, shared by every connection of a KvFactory. Keys given a time to
/// live are removed by a timer on `clock` (and never seen after their time, even if the
/// loop is late).
class KvStore {
 public:
  explicit KvStore(torsion::Scheduler& clock) : clock_(clock) {}
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;
  ~KvStore() {
    for (auto& entry : map_) entry.second.expiry.cancel();
  }

  /// The value of `key`, or null; valid until the store next changes.
  std::string* get(std::string_view key) {
    const auto found = find(key);
    return found == map_.end() ? nullptr : &found->second.value;
  }
  /// Sets `key` to `value`, with a time to live in seconds if `ttl` > 0, or none (a
  /// previous one is dropped) if `ttl` is 0; `keep_ttl` keeps the one it has (INCR).
  void set(std::string_view key, std::string value, double ttl, bool keep_ttl = false) {
    auto found = find(key);
    if (found == map_.end()) found = map_.emplace(std::string(key), Entry{}).first;
    Entry& entry = found->second;
    entry.value = std::move(value);
    if (keep_ttl) return;
    if (ttl <= 0) {
      entry.expiry.cancel();
    } else if (!entry.expiry.reset(ttl)) {
      entry.expiry = clock_.call_later(ttl, [this, k = found->first] { map_.erase(k); });
    }
  }
  /// Removes `key`; returns whether it was there.
  bool del(std::string_view key) {
    const auto found = find(key);
    if (found == map_.end()) return false;
    found->second.expiry.cancel();
    map_.erase(found);
    return true;
  }
  /// How many keys are stored.
  std::size_t size() const { return map_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Entry {
    std::string value;
    torsion::DelayedCall expiry;
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;

  Map::iterator find(std::string_view key) {
    auto found = map_.find(key);
    if (found != map_.end() && found->second.expiry.active() &&
        found->second.expiry.time() <= clock_.seconds()) {  // due, its timer not yet run
      found->second.expiry.cancel();
      map_.erase(found);
      return map_.end();
    }
    return found;
  }

  torsion::Scheduler& clock_;
  Map map_;
};

/// One client connection: reads requests with resp::RequestReceiver and answers each
/// with one write.
class KvServer : public resp::RequestReceiver {
 public:
  explicit KvServer(KvStore& store, resp::Limits limits = {})
      : resp::RequestReceiver(limits), store_(store) {}

  void command_received(std::span<std::string> args) override {
    const std::string_view name = args[0];
    const std::size_t argc = args.size();
    // The name and arity of each command, as in redis's command table (negative: at least).
    const auto is = [&](std::string_view command, int arity) {
      if (name.size() != command.size() ||
          !std::equal(name.begin(), name.end(), command.begin(), [](char a, char b) {
            return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
          }))
        return false;
      arity_ok_ = arity > 0 ? argc == static_cast<std::size_t>(arity)
                            : argc >= static_cast<std::size_t>(-arity);
      if (!arity_ok_) error("wrong number of arguments for '" + std::string(command) + "' command");
      return true;
    };
    if (is("get", 2)) {
      if (arity_ok_) bulk(store_.get(args[1]));
    } else if (is("set", -3)) {
      if (arity_ok_) set(args);
    } else if (is("ping", -1)) {
      if (argc > 2)
        error("wrong number of arguments for 'ping' command");
      else if (argc == 2)
        bulk(&args[1]);
      else
        out_ += "+PONG\r\n";
    } else if (is("echo", 2)) {
      if (arity_ok_) bulk(&args[1]);
    } else if (is("del", -2)) {
      if (arity_ok_) {
        std::int64_t n = 0;
        for (std::size_t i = 1; i < argc; ++i) n += store_.del(args[i]);
        integer(n);
      }
    } else if (is("exists", -2)) {
      if (arity_ok_) {
        std::int64_t n = 0;
        for (std::size_t i = 1; i < argc; ++i) n += store_.get(args[i]) != nullptr;
        integer(n);
      }
    } else if (is("incr", 2)) {
      if (arity_ok_) incr(args[1]);
    } else if (is("mget", -2)) {
      if (arity_ok_) {
        out_ += '*' + std::to_string(argc - 1) + "\r\n";
        for (std::size_t i = 1; i < argc; ++i) bulk(store_.get(args[i]));
      }
    } else {
      unknown(args);
    }
    transport().write(out_);
    out_.clear();
  }

 private:
  // SET key value [EX seconds | PX milliseconds] [NX | XX]
  void set(std::span<std::string> args) {
    bool nx = false, xx = false;
    const std::string* expire = nullptr;
    bool in_seconds = false;
    for (std::size_t i = 3; i < args.size(); ++i) {
      std::string option = args[i];
      for (char& c : option) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const bool has_next = i + 1 < args.size();
      if (option == "NX" && !xx) {
        nx = true;
      } else if (option == "XX" && !nx) {
        xx = true;
      } else if ((option == "EX" || option == "PX") && expire == nullptr && has_next) {
        in_seconds = option == "EX";
        expire = &args[++i];
      } else {
        return error("syntax error");
      }
    }
    double ttl = 0;
    if (expire != nullptr) {
      std::int64_t n = 0;
      if (!resp::parse_integer(*expire, n)) return error("value is not an integer or out of range");
      constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
      if (n <= 0 || (in_seconds && n > kMax / 1000) ||
          (in_seconds ? n * 1000 : n) > kMax - now_ms())
        return error("invalid expire time in 'set' command");
      ttl = in_seconds ? static_cast<double>(n) : static_cast<double>(n) / 1000;
    }
    const bool exists = store_.get(args[1]) != nullptr;
    if ((nx && exists) || (xx && !exists)) {
      out_ += "$-1\r\n";
      return;
    }
    store_.set(args[1], std::move(args[2]), ttl);
    out_ += "+OK\r\n";
  }

  void incr(std::string_view key) {
    std::string* value = store_.get(key);
    std::int64_t n = 0;
    if (value != nullptr && !resp::parse_integer(*value, n))
      return error("value is not an integer or out of range");
    if (n == std::numeric_limits<std::int64_t>::max())
      return error("increment or decrement would overflow");
    ++n;
    store_.set(key, std::to_string(n), 0, /*keep_ttl=*/true);
    integer(n);
  }

  // redis-server's wording, including the trailing space after each argument.
  void unknown(std::span<std::string> args) {
    // Appended piece by piece: g++ 12 at -O3 rejects "literal" + std::string (-Wrestrict).
    std::string quoted;
    for (std::size_t i = 1; i < args.size() && quoted.size() < 128; ++i) {
      const std::size_t room = 128 - quoted.size();
      quoted += '\'';
      quoted.append(args[i], 0, room);
      quoted += "' ";
    }
    std::string message = "unknown command '";
    message.append(args[0], 0, 128);
    message += "', with args beginning with: ";
    message += quoted;
    std::replace_if(message.begin(), message.end(), [](char c) { return c == '\r' || c == '\n'; },
                    ' ');
    error(message);
  }

  // Unix time in milliseconds: redis refuses an expire time that overflows when added.
  static std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

  void error(std::string_view message) {
    out_ += "-ERR ";
    out_ += message;
    out_ += "\r\n";
  }
  void integer(std::int64_t n) {
    out_ += ':';
    out_ += std::to_string(n);
    out_ += "\r\n";
  }
  void bulk(const std::string* value) {
    if (value == nullptr) {
      out_ += "$-1\r\n";
      return;
    }
    out_ += '$';
    out_ += std::to_string(value->size());
    out_ += "\r\n";
    out_ += *value;
    out_ += "\r\n";
  }

  KvStore& store_;
  std::string out_;  // the reply to the current request
  bool arity_ok_ = false;
};

/// Builds a KvServer for each connection; owns the store they share.
class KvFactory : public torsion::Factory {
 public:
  explicit KvFactory(torsion::Scheduler& clock, resp::Limits limits = {})
      : store_(clock), limits_(limits) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<KvServer>(store_, limits_);
  }
  /// The store, for tests.
  KvStore& store() { return store_; }

 private:
  KvStore store_;
  resp::Limits limits_;
};

}  // namespace torsion::examples
