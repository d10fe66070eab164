#pragma once
// Private: an intrusive list of the reactor's live connections (no allocation per link).

#include <cstddef>

namespace torsion::detail {

// Base of every live connection object the reactor must know about.
class Tracked {
 public:
  Tracked() = default;
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  // The reactor is being destroyed: close now and release, without calling back.
  virtual void release_tracked() = 0;
  // Graceful shutdown: close after flushing (lose_connection), or now (abort_connection).
  virtual void lose_tracked() {}
  virtual void abort_tracked() {}

  virtual ~Tracked() = default;

 private:
  friend class TrackedList;
  Tracked* prev_ = nullptr;
  Tracked* next_ = nullptr;
  bool linked_ = false;
};

class TrackedList {
 public:
  void link(Tracked& t) noexcept {
    if (t.linked_) return;
    t.linked_ = true;
    t.prev_ = nullptr;
    t.next_ = head_;
    if (head_) head_->prev_ = &t;
    head_ = &t;
    ++size_;
  }
  void unlink(Tracked& t) noexcept {
    if (!t.linked_) return;
    t.linked_ = false;
    if (t.prev_) t.prev_->next_ = t.next_; else head_ = t.next_;
    if (t.next_) t.next_->prev_ = t.prev_;
    t.prev_ = t.next_ = nullptr;
    --size_;
  }
  std::size_t size() const noexcept { return size_; }
  // Calls fn(member) on each member; members may unlink themselves meanwhile.
  template <class F>
  void for_each(F&& fn) {
    for (Tracked* t = head_; t != nullptr;) {
      Tracked* next = t->next_;
      fn(*t);
      t = next;
    }
  }
  // Calls release_tracked on each member; members may unlink or destroy themselves.
  void release_all() {
    for (Tracked* t = head_; t != nullptr;) {
      Tracked* next = t->next_;
      t->release_tracked();
      t = next;
    }
  }

 private:
  Tracked* head_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace torsion::detail
