#pragma once
// Forced into every translation unit of a -Dio_uring=true build, before Asio (meson.build's
// io_uring_args: `-include framework/detail/io_uring_sqe.hpp`, which torsion_dep and
// torsion.pc carry to users too).
//
// Asio 1.22's io_uring backend prepares some requests without setting their user data:
// the cancellations it sends when an object is closed or cancelled, and the removal of its
// timeout. liburing 2.3 (Debian 12) does not clear a submission entry either, so such a
// request carries the user data of the request that used the same ring slot before it (a
// pointer to some object's operation queue, once the ring has gone round). When it
// completes, Asio treats it as that queue's completion: another object's operation finishes
// with a result that is not its own (a wait that never happened, an accept of descriptor 0)
// or, if that object is gone, memory already freed is used. Asio ignores completions whose
// user data is null, which is what it means for these requests: so every entry it takes
// from the ring starts with null user data here.
//
// It also sets up Asio's ring with IORING_SETUP_COOP_TASKRUN and IORING_SETUP_TASKRUN_FLAG
// where the kernel has them (5.19 on; an older one gets the plain ring). Without them the
// kernel interrupts the reactor's thread for every completion that needs work in its
// context (a receive whose bytes arrived, a poll), which made even a minimal io_uring echo
// server cost ~1.3x the CPU per message of a minimal epoll one here; with them that work
// runs when the thread next enters the kernel, which the loop does every turn, and the
// io_uring floor came to ~0.97x epoll's (tests/benchmarks/README.md). Asio reads
// completions with io_uring_peek_cqe, which enters the kernel when IORING_SQ_TASKRUN says
// such work waits, so no completion is left behind. A reactor's ring is used from its own
// thread; other threads only submit no-ops to wake it, which complete at once.

#include <liburing.h>

#include <cerrno>

inline io_uring_sqe* torsion_io_uring_get_sqe(io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe != nullptr) io_uring_sqe_set_data(sqe, nullptr);
  return sqe;
}

#define io_uring_get_sqe torsion_io_uring_get_sqe

inline int torsion_io_uring_queue_init(unsigned entries, io_uring* ring, unsigned flags) {
  const int r = io_uring_queue_init(entries, ring,
                                    flags | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  if (r != -EINVAL) return r;
  return io_uring_queue_init(entries, ring, flags);  // a kernel older than 5.19
}

#define io_uring_queue_init torsion_io_uring_queue_init
