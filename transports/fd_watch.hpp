#pragma once
/// \file
/// Foreign descriptors: watch a descriptor that some other library owns and call back
/// when it is readable or writable (asyncio's add_reader, Twisted's addReader).

#include <functional>

#include "framework/reactor.hpp"

namespace torsion {

/// Calls `fn` from the loop whenever `fd` is readable, again on every loop turn while it
/// stays readable (level-triggered: a callback that reads nothing is called again), until
/// remove_reader. Replaces the reader already registered for `fd`, if any. The reactor
/// watches a duplicate of `fd` (made close-on-exec), so `fd` itself is never closed or
/// changed by the reactor; call remove_reader before closing it, or the duplicate keeps
/// the file open and the callback keeps firing. An exception thrown by `fn` is logged
/// and the watch goes on. A callback that leaves the descriptor ready forever keeps the
/// loop busy: other I/O and timers still run between its calls, but run_until checks its
/// condition only once nothing is ready. Throws std::invalid_argument for a negative fd and
/// std::system_error if the descriptor cannot be watched (a regular file, EPERM).
void add_reader(Reactor& reactor, int fd, std::function<void()> fn);

/// As add_reader, for writability.
void add_writer(Reactor& reactor, int fd, std::function<void()> fn);

/// Stops calling the reader of `fd`; returns false if none was registered. Safe from
/// inside any callback, including the reader's own: it is not called again afterwards
/// (and it is destroyed only after it returns).
bool remove_reader(Reactor& reactor, int fd);

/// As remove_reader, for the writer.
bool remove_writer(Reactor& reactor, int fd);

}  // namespace torsion
