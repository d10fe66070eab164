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

#include <liburing.h>

inline io_uring_sqe* torsion_io_uring_get_sqe(io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe != nullptr) io_uring_sqe_set_data(sqe, nullptr);
  return sqe;
}

#define io_uring_get_sqe torsion_io_uring_get_sqe
