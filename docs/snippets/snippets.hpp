#pragma once
// The runnable parts of the documentation's snippets; docs/snippets_test.cpp calls each
// one and checks what it returns, so every page's code is both compiled and run.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/reason.hpp"
#include "framework/transport.hpp"

namespace docs {

// reactor_and_timers.cpp
std::vector<std::string> timers_in_order(torsion::Reactor& reactor);
std::vector<std::string> priorities_in_order(torsion::Reactor& reactor);
long sum_on_a_worker_thread(torsion::Reactor& reactor);
int slow_checks_in_a_loop(torsion::Reactor& reactor);

// reactor_pool.cpp: connections accepted by each of two reactors serving one port, after
// `clients` pings were answered (a -1 at the end if some were not).
std::vector<int> connections_per_reactor(int clients);

// protocols_and_factories.cpp
std::string hello_through_echo(torsion::Reactor& reactor);
int connections_refused_over_limit(torsion::Reactor& reactor);
std::string what_the_proxy_said();
double slow_peer_cut_off_after();
struct SharedState {
  std::vector<std::string> said;  // what the Members wrote into the application's Room
  std::size_t copy_sees = 0;      // what a protocol built from a copied Room sees
};
SharedState shared_state();

// lifetimes.cpp: what Finger and SlowFinger sent when the answer came after the client
// left ("finger[] slow[]"), and when it came in time.
std::string late_answers();
std::string answers_in_time();

// services.cpp
std::string hello_with_connect_protocol(torsion::Reactor& reactor);
std::string through_a_proxy(torsion::Reactor& reactor);
std::vector<std::string> an_application(torsion::Reactor& reactor);

// processes.cpp: "hello\n" from get_process_output, "3\n" from run_process (wc -w),
// "-1" from maybe_deferred over a throwing parse.
std::string process_helpers(torsion::Reactor& reactor);

// transports.cpp
void three_ways_to_write(torsion::Transport& t, std::string big_payload);
std::string request_with_half_close(torsion::Reactor& reactor);

// flow_control.cpp
std::size_t bytes_from_pull_producer(torsion::Reactor& reactor, std::size_t total);
bool proxy_pauses_reading();
struct BroadcastRun {
  std::size_t reader_got = 0;    // bytes the reading member received
  std::size_t most_queued = 0;   // the most the sleeping member ever had queued
  bool sleeper_aborted = false;
};
BroadcastRun broadcast_to_a_reader_and_a_sleeper();

// endpoints.cpp
std::string echo_through_endpoints(torsion::Reactor& reactor);
std::string endpoint_error_message(torsion::Reactor& reactor);
void register_loopback_endpoint();

// why_a_reactor.cpp
std::size_t bulk_write_with_idle_work(torsion::Reactor& reactor, std::size_t bytes,
                                      long& slices);

// async_styles.cpp
std::string deferred_and_coroutine(torsion::Reactor& reactor);
std::string chained_in_place();  // "42"
std::string read_to_end_reply(torsion::Reactor& reactor);  // "hello\n"

// protocols.cpp: what a protocol wrote for `input` (fed in `chunk`-byte reads, 0 = at
// once), whether it asked to close, and why it rejected the input.
struct ProtocolRun {
  std::string written;
  bool closing = false;
  std::optional<torsion::error> rejection;
};
ProtocolRun shout(std::string_view input);
ProtocolRun commands(std::string_view input);
ProtocolRun tolerant(std::string_view input, std::size_t chunk);
ProtocolRun store(std::string_view input, std::size_t chunk);
ProtocolRun reverse(std::string_view input, std::size_t chunk);
ProtocolRun netstrings(std::string_view input, std::vector<std::string>& got);
double session_dropped_after();
struct PolicyRun {
  std::size_t accepted = 0;
  std::size_t refused = 0;
  std::string reply;
  bool dripping_aborted = false;
  bool others_open = false;
  std::size_t read = 0;
};
PolicyRun stacked_policies();
std::string metered(std::size_t& bytes_in, std::size_t& refused);

// logging.cpp
std::vector<std::string> logged_lines();
void log_to_file(const std::string& path);
void log_to_journal(const std::string& journal_socket);

}  // namespace docs
