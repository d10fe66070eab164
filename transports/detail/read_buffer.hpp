#pragma once
// Private: the read buffer a reactor's thread lends to whichever stream engine reads.
//
// A stream engine reads only when its socket is readable, into this buffer, and hands
// the bytes to its protocol at once; data_received's view is valid for the call only, so
// nothing is left behind when it returns. An idle connection therefore holds no read
// memory, and none is kept after a burst (libuv's alloc_cb lends its buffer the same way).
// One buffer per thread, since a reactor runs on one thread and a read is delivered before
// the next one starts; a nested read (a callback that drives the loop by hand while it
// still holds a view) gets a buffer of its own, so no view is ever overwritten.

#include <cstddef>
#include <memory>

namespace torsion::detail {

class ReadLease {
 public:
  static constexpr std::size_t kSize = 128 * 1024;

  ReadLease() {
    Slot& slot = thread_slot();
    if (!slot.busy) {
      if (!slot.buffer) slot.buffer = std::make_unique_for_overwrite<char[]>(kSize);
      slot.busy = true;
      data_ = slot.buffer.get();
    } else {
      own_ = std::make_unique_for_overwrite<char[]>(kSize);
      data_ = own_.get();
    }
  }
  ~ReadLease() {
    if (!own_) thread_slot().busy = false;
  }
  ReadLease(const ReadLease&) = delete;
  ReadLease& operator=(const ReadLease&) = delete;

  char* data() const noexcept { return data_; }
  static constexpr std::size_t size() noexcept { return kSize; }

 private:
  struct Slot {
    std::unique_ptr<char[]> buffer;
    bool busy = false;
  };
  static Slot& thread_slot() noexcept {
    static thread_local Slot slot;
    return slot;
  }

  char* data_ = nullptr;
  std::unique_ptr<char[]> own_;
};

}  // namespace torsion::detail
