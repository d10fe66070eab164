#pragma once
// Private: the byte queue behind the stream engine's write().
//
//   chunks (a ring):  [ pos|---unsent--- ] [ ------- ] [ tail: small writes coalesce ]
//                        ^ front: gather() hands out up to N views from here
//
// Small writes are copied into the tail chunk (up to kCoalesce bytes per chunk), so many
// small writes become one writev. Large payloads moved in stay their own chunk (no copy).
// Emptied chunk buffers go back to a small pool per thread, shared by every queue of the
// reactor, so steady-state writing does not allocate and an empty queue holds no buffer.
// A file region (FileWriter::write_file) is a chunk of its own that holds no bytes, only
// the file and the range still to send; gather() stops in front of it and the transport
// sends it with sendfile(2) (front_file()). A pipe region (FileRegion::pipe) is one too,
// sent with splice(2); one written right behind another of the same pipe extends it, as
// their bytes follow each other in the pipe.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/file_region.hpp"

namespace torsion::detail {

class WriteQueue {
 public:
  static constexpr std::size_t kCoalesce = 64 * 1024;  // tail chunk capacity for copies
  static constexpr std::size_t kOwnedMin = 16 * 1024;  // smaller moved-in strings are copied

  bool empty() const noexcept { return bytes_ == 0; }
  std::size_t size() const noexcept { return bytes_; }

  void append(std::string_view data) {
    if (data.empty()) return;
    bytes_ += data.size();
    if (count_ > 0) {
      Chunk& tail = at(count_ - 1);
      if (!tail.sealed && tail.data.size() + data.size() <= kCoalesce) {
        tail.data.append(data);
        return;
      }
    }
    Chunk& c = push();
    c.data = take_spare();
    c.data.assign(data);
    c.sealed = data.size() >= kCoalesce;
  }

  // Takes `data` from byte `offset` on, without copying when it is large.
  void append_owned(std::string&& data, std::size_t offset = 0) {
    if (data.size() - offset < kOwnedMin) {
      append(std::string_view(data).substr(offset));
      return;
    }
    bytes_ += data.size() - offset;
    Chunk& c = push();
    c.data = std::move(data);
    c.pos = offset;
    c.sealed = true;
  }

  // Queues a file region (not empty) behind what waits.
  void append_file(FileRegion region) {
    bytes_ += region.length;
    if (region.pipe && count_ > 0) {
      Chunk& tail = at(count_ - 1);
      if (tail.pipe && tail.file == region.fd) {
        tail.file_end += region.length;
        return;
      }
    }
    Chunk& c = push();
    c.file = region.fd;
    c.pipe = region.pipe;
    c.file_pos = region.pipe ? 0 : region.offset;
    c.file_end = c.file_pos + region.length;
    c.keep = std::move(region.keep);
    c.sealed = true;
  }

  // The file region at the front: its descriptor, the next offset to send and the bytes
  // left in it; fd is -1 when the front holds bytes (send those with gather()).
  struct FileFront {
    int fd = -1;
    std::uint64_t offset = 0;
    std::uint64_t left = 0;
    bool pipe = false;  // fd is a pipe: splice(2) from its front, offset unused
  };
  FileFront front_file() const noexcept {
    if (count_ == 0 || at(0).file < 0) return {};
    const Chunk& c = at(0);
    return {c.file, c.file_pos, c.file_end - c.file_pos, c.pipe};
  }

  // Fills `out` (anything constructible from pointer and size) with up to `max` views of
  // the unsent bytes, front first, up to the first file region. Returns how many.
  template <class Buffer>
  std::size_t gather(Buffer* out, std::size_t max) const {
    std::size_t n = 0;
    for (; n < count_ && n < max; ++n) {
      const Chunk& c = at(n);
      if (c.file >= 0) break;
      out[n] = Buffer(c.data.data() + c.pos, c.data.size() - c.pos);
    }
    return n;
  }

  // The same into iovecs, for a sendmsg/writev of our own: `out` may be uninitialized.
  std::size_t gather(iovec* out, std::size_t max) const {
    std::size_t n = 0;
    for (; n < count_ && n < max; ++n) {
      const Chunk& c = at(n);
      if (c.file >= 0) break;
      out[n].iov_base = const_cast<char*>(c.data.data() + c.pos);
      out[n].iov_len = c.data.size() - c.pos;
    }
    return n;
  }

  // The length of the file region that is chunk `n` (the one after `n` gathered ones):
  // the bytes gathered are followed at once by that many bytes from a file. 0 when chunk
  // `n` is not a file region.
  std::uint64_t file_after(std::size_t n) const noexcept {
    if (n >= count_ || at(n).file < 0) return 0;
    return at(n).file_end - at(n).file_pos;
  }

  // Drops the first `n` bytes (they were sent).
  void consume(std::size_t n) {
    bytes_ -= n;
    while (n > 0) {
      Chunk& c = at(0);
      if (c.file >= 0) {
        const std::uint64_t file_left = c.file_end - c.file_pos;
        if (n < file_left) {
          c.file_pos += n;
          return;
        }
        n -= static_cast<std::size_t>(file_left);
        pop();
        continue;
      }
      const std::size_t left = c.data.size() - c.pos;
      if (n < left) {
        c.pos += n;
        return;
      }
      n -= left;
      pop();
    }
  }

  void clear() {
    while (count_ > 0) pop();
    bytes_ = 0;
  }

 private:
  struct Chunk {
    std::string data;
    std::size_t pos = 0;
    bool sealed = false;  // no more appends (a moved-in payload, or full)
    int file = -1;        // a file region: the descriptor (data is unused)
    bool pipe = false;    // the file region is a pipe's front (FileRegion::pipe)
    std::uint64_t file_pos = 0;
    std::uint64_t file_end = 0;
    std::shared_ptr<const void> keep;  // keeps `file` open
  };

  Chunk& at(std::size_t i) noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  const Chunk& at(std::size_t i) const noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }

  Chunk& push() {
    if (ring_.empty()) ring_ = take_ring();
    if (count_ == ring_.size()) {
      std::vector<Chunk> bigger(ring_.empty() ? 4 : ring_.size() * 2);
      for (std::size_t i = 0; i < count_; ++i) bigger[i] = std::move(at(i));
      ring_ = std::move(bigger);
      head_ = 0;
    }
    Chunk& c = at(count_++);
    c.pos = 0;
    c.sealed = false;
    return c;
  }

  void pop() {
    Chunk& c = at(0);
    std::vector<std::string>& spare = thread_spares();
    if (c.data.capacity() <= kCoalesce && spare.size() < kSpares) {
      c.data.clear();
      spare.push_back(std::move(c.data));
    }
    c.data = std::string();
    if (c.file >= 0) {
      c.file = -1;
      c.pipe = false;
      c.keep.reset();
    }
    head_ = (head_ + 1) & (ring_.size() - 1);
    if (--count_ == 0) give_ring_back();
  }

  // An empty queue holds no ring: it goes back to the thread's pool (a large one, left by
  // a burst, is freed), and push() takes one again.
  void give_ring_back() {
    std::vector<std::vector<Chunk>>& rings = thread_rings();
    if (ring_.size() <= kRingKept && rings.size() < kSpares) rings.push_back(std::move(ring_));
    ring_ = std::vector<Chunk>();
    head_ = 0;
  }
  static std::vector<Chunk> take_ring() {
    std::vector<std::vector<Chunk>>& rings = thread_rings();
    if (rings.empty()) return std::vector<Chunk>(kRingKept);
    std::vector<Chunk> r = std::move(rings.back());
    rings.pop_back();
    return r;
  }
  static std::vector<std::vector<Chunk>>& thread_rings() noexcept {
    static thread_local std::vector<std::vector<Chunk>> rings;
    return rings;
  }

  static std::string take_spare() {
    std::vector<std::string>& spare = thread_spares();
    if (spare.empty()) return {};
    std::string s = std::move(spare.back());
    spare.pop_back();
    return s;
  }

  // Emptied chunk buffers, for every queue on this thread (one reactor runs on one thread).
  static constexpr std::size_t kSpares = 16;
  static std::vector<std::string>& thread_spares() noexcept {
    static thread_local std::vector<std::string> spares;
    return spares;
  }
  static constexpr std::size_t kRingKept = 4;  // rings up to this size are pooled

  std::vector<Chunk> ring_;  // size is 0 or a power of two
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace torsion::detail
