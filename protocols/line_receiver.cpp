#include "protocols/line_receiver.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <stdexcept>
#include <utility>

namespace torsion {

namespace {

// A kept buffer that empties gives back its memory above this size, so that a burst
// leaves nothing behind on an idle connection.
constexpr std::size_t kRetained = 1024;

void check_delimiter(const std::string& delimiter, const char* who) {
  if (delimiter.empty()) throw std::invalid_argument(std::string(who) + ": empty delimiter");
}

// After a search for a delimiter of `delimiter_size` bytes found nothing in `size` bytes,
// the bytes before the returned offset cannot start a delimiter, whatever arrives next.
std::size_t scanned_up_to(std::size_t size, std::size_t delimiter_size) {
  return size >= delimiter_size ? size - delimiter_size + 1 : 0;
}

std::string too_long(std::size_t max_length) {
  return "line longer than " + std::to_string(max_length) + " bytes";
}

void release_if_empty(std::string& buffer) {
  if (buffer.empty() && buffer.capacity() > kRetained) std::string().swap(buffer);
}

// `line` holds the beginning of a line, and no delimiter starts in it before `scanned`.
// Appends the bytes of `data` up to the end of the first delimiter (which may begin in
// `line`), or all of `data` if no delimiter ends in it; returns how many it took. On a
// delimiter, `scanned` is left at its start, so the next search finds it at once.
std::size_t extend_line(std::string& line, std::size_t& scanned, std::string_view data,
                        std::string_view delimiter) {
  const std::size_t old = line.size();
  const std::size_t dsize = delimiter.size();
  // A delimiter that begins in `line` ends within the first dsize - 1 bytes of data.
  line.append(data.substr(0, std::min(dsize - 1, data.size())));
  const std::size_t straddling = line.find(delimiter, scanned);
  if (straddling != std::string::npos) {
    line.resize(straddling + dsize);
    scanned = straddling;
    return straddling + dsize - old;
  }
  line.resize(old);
  const std::size_t at = data.find(delimiter);
  const std::size_t take = at == std::string_view::npos ? data.size() : at + dsize;
  line.append(data.substr(0, take));
  scanned = at == std::string_view::npos ? scanned_up_to(line.size(), dsize) : old + at;
  return take;
}

// The length of `pending` without a trailing part of a delimiter (bytes that a delimiter
// arriving next would complete).
std::size_t without_partial_delimiter(std::string_view pending, std::string_view delimiter) {
  for (std::size_t k = std::min(delimiter.size() - 1, pending.size()); k > 0; --k)
    if (pending.ends_with(delimiter.substr(0, k))) return pending.size() - k;
  return pending.size();
}

}  // namespace

// --- LineReceiver ------------------------------------------------------------------

LineReceiver::LineReceiver(std::string delimiter, std::size_t max_length)
    : delimiter_(std::move(delimiter)), max_length_(max_length) {
  check_delimiter(delimiter_, "LineReceiver");
}

void LineReceiver::line_length_exceeded(std::string_view data) {
  (void)data;
  reject(Reason(error::line_too_long, {}, too_long(max_length_)));
}

void LineReceiver::reject(Reason reason) {
  rejection_ = std::move(reason);
  if (has_transport()) transport().lose_connection();
}

void LineReceiver::send_line(std::string_view line) {
  const std::array<std::string_view, 2> parts{line, delimiter_};
  transport().write_sequence(parts);
}

bool LineReceiver::stopped() const { return !has_transport() || !transport().connected(); }

void LineReceiver::data_received(std::string_view data) {
  if (processing_) {  // from one of our callbacks: the running loop gets to it
    reentered_.append(data);
    return;
  }
  if (paused_) {
    buffer_.erase(0, start_);
    start_ = 0;
    buffer_.append(data);
    return;
  }
  process(data);
}

// The bytes not yet delivered are, in order:
//
//   inject_ | buffer_[start_..] | later_ (the read, in place) | reentered_
//
// buffer_ is parsed first (what a pause held up, or an incomplete line); an incomplete
// line at its end takes from the read only the bytes up to its delimiter, and the rest of
// the read is parsed in place: no byte is copied twice, and a switch of mode copies
// nothing. Callbacks get views into buffer_ or the read; neither is changed while a
// callback runs (set_line_mode(extra) goes to inject_, data_received to reentered_).
void LineReceiver::process(std::string_view data) {
  processing_ = true;
  later_ = data;
  std::string held;  // re-entered bytes being parsed
  struct Finish {
    LineReceiver& r;
    ~Finish() {
      r.processing_ = false;
      r.current_ = {};
      r.pos_ = nullptr;
      r.later_ = {};
    }
  } finish{*this};

  for (;;) {
    if (start_ < buffer_.size()) {
      const Stop stop = parse(buffer_, start_);
      if (stop == Stop::blocked) break;
      if (stop == Stop::inject) {  // extra goes ahead of the rest
        buffer_.replace(0, start_, inject_);
        inject_.clear();
        start_ = 0;
        scanned_ = 0;
        continue;
      }
      if (stop == Stop::partial) {
        if (later_.empty()) {
          if (reentered_.empty()) break;
          held = std::exchange(reentered_, std::string());
          later_ = held;
        }
        buffer_.erase(0, start_);  // an incomplete line: short
        start_ = 0;
        later_.remove_prefix(extend_line(buffer_, scanned_, later_, delimiter_));
        continue;
      }
      buffer_.clear();
      start_ = 0;
    }
    if (later_.empty()) {
      if (reentered_.empty()) break;
      held = std::exchange(reentered_, std::string());
      later_ = held;
      continue;
    }
    const std::string_view bytes = std::exchange(later_, std::string_view());
    std::size_t pos = 0;
    const Stop stop = parse(bytes, pos);
    later_ = bytes.substr(pos);
    if (stop == Stop::blocked) break;
    buffer_.clear();  // all delivered before the read was reached
    start_ = 0;
    if (stop == Stop::inject) {
      buffer_ = std::exchange(inject_, std::string());
      scanned_ = 0;
    } else if (stop == Stop::partial) {
      buffer_.assign(later_);
      later_ = {};
    }
  }
  // Keep what was not delivered.
  if (!later_.empty() || !reentered_.empty()) {
    buffer_.erase(0, start_);
    start_ = 0;
    buffer_.append(later_);
    buffer_.append(reentered_);
    reentered_.clear();
  } else if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  release_if_empty(buffer_);
  release_if_empty(held);
}

// Delivers lines and raw pieces from bytes[pos..] in place until they run out, the
// receiver is paused or closed, or set_line_mode(extra) asks for extra to go first.
//
//   bytes: [ delivered ........ | not yet delivered ......... ]
//          0                    pos          pos+scanned_ (no delimiter starts before)
LineReceiver::Stop LineReceiver::parse(std::string_view bytes, std::size_t& pos) {
  current_ = bytes;
  pos_ = &pos;
  for (;;) {
    if (!inject_.empty()) return Stop::inject;
    if (paused_ || stopped()) return Stop::blocked;
    if (pos == bytes.size()) return Stop::end;
    const std::string_view rest = bytes.substr(pos);
    if (mode_ != Mode::line) {
      std::size_t n = rest.size();
      if (mode_ == Mode::counted) {
        n = std::min(n, raw_left_);
        raw_left_ -= n;
        if (raw_left_ == 0) mode_ = Mode::line;
      }
      raw_from_ = pos;
      pos += n;
      scanned_ = 0;
      raw_data_received(rest.substr(0, n));
      continue;
    }
    const std::size_t dsize = delimiter_.size();
    const std::size_t at = rest.find(delimiter_, scanned_);
    if (at == std::string_view::npos) {
      if (rest.size() >= dsize && rest.size() - dsize >= max_length_) {  // no delimiter in time
        exceeded(bytes, pos);
        continue;
      }
      scanned_ = scanned_up_to(rest.size(), dsize);
      return Stop::partial;
    }
    scanned_ = 0;
    if (at > max_length_) {
      exceeded(bytes, pos);
      continue;
    }
    pos += at + dsize;
    raw_from_ = pos;
    line_received(rest.substr(0, at));
  }
}

// As Twisted: line_length_exceeded gets the over-long line and everything after it, and
// all of that is dropped.
void LineReceiver::exceeded(std::string_view bytes, std::size_t from) {
  std::string joined;
  std::string_view all = bytes.substr(from);
  if (!later_.empty() || !reentered_.empty()) {
    joined.reserve(all.size() + later_.size() + reentered_.size());
    joined.append(all).append(later_).append(reentered_);
    all = joined;
  }
  *pos_ = bytes.size();
  raw_from_ = bytes.size();
  later_ = {};
  reentered_.clear();
  scanned_ = 0;
  line_length_exceeded(all);
}

void LineReceiver::set_raw_mode() {
  mode_ = Mode::raw;
  raw_left_ = 0;
  scanned_ = 0;
  if (!processing_ && !paused_ && buffered_size() > 0) process({});
}

void LineReceiver::expect_raw(std::size_t count) {
  if (count == 0) {
    set_line_mode();
    return;
  }
  mode_ = Mode::counted;
  raw_left_ = count;
  scanned_ = 0;
  if (!processing_ && !paused_ && buffered_size() > 0) process({});
}

void LineReceiver::set_line_mode(std::string_view extra) {
  mode_ = Mode::line;
  raw_left_ = 0;
  scanned_ = 0;
  if (processing_ && !extra.empty()) {
    // The tail of the raw piece being delivered (Twisted's idiom): step back over it
    // instead of copying it.
    const bool in_piece =
        pos_ != nullptr && inject_.empty() &&
        std::less_equal<const char*>()(current_.data() + raw_from_, extra.data()) &&
        extra.data() + extra.size() == current_.data() + *pos_;
    if (in_piece)
      *pos_ -= extra.size();
    else
      inject_.append(extra);
    return;
  }
  if (!processing_) {
    buffer_.insert(start_, extra);
    if (!paused_ && buffered_size() > 0) process({});
  }
}

std::string LineReceiver::clear_line_buffer() {
  scanned_ = 0;
  if (!processing_) {
    std::string out = buffer_.substr(start_);
    buffer_.clear();
    start_ = 0;
    release_if_empty(buffer_);
    return out;
  }
  std::string out = std::exchange(inject_, std::string());
  if (pos_ != nullptr) {
    out.append(current_.substr(*pos_));
    *pos_ = current_.size();
    raw_from_ = current_.size();
  }
  out.append(later_).append(reentered_);
  later_ = {};
  reentered_.clear();
  return out;
}

void LineReceiver::pause_producing() {
  paused_ = true;
  if (has_transport()) transport().pause_producing();
}

void LineReceiver::resume_producing() {
  if (!paused_) return;
  paused_ = false;
  if (has_transport()) transport().resume_producing();
  if (!processing_ && buffered_size() > 0) process({});
}

void LineReceiver::stop_producing() {
  paused_ = true;
  if (has_transport()) transport().stop_producing();
}

void LineReceiver::set_delimiter(std::string delimiter) {
  check_delimiter(delimiter, "LineReceiver::set_delimiter");
  delimiter_ = std::move(delimiter);
  scanned_ = 0;
}

void LineReceiver::set_max_length(std::size_t max_length) { max_length_ = max_length; }

// --- LineOnlyReceiver ----------------------------------------------------------------

LineOnlyReceiver::LineOnlyReceiver(std::string delimiter, std::size_t max_length)
    : delimiter_(std::move(delimiter)), max_length_(max_length) {
  check_delimiter(delimiter_, "LineOnlyReceiver");
}

void LineOnlyReceiver::line_length_exceeded(std::string_view line) {
  (void)line;
  rejection_ = Reason(error::line_too_long, {}, too_long(max_length_));
  if (has_transport()) transport().lose_connection();
}

void LineOnlyReceiver::send_line(std::string_view line) {
  const std::array<std::string_view, 2> parts{line, delimiter_};
  transport().write_sequence(parts);
}

// A pending line is completed with the bytes of the read up to its delimiter; the rest
// of the read is split in place, and only its incomplete tail is kept.
void LineOnlyReceiver::data_received(std::string_view data) {
  if (!buffer_.empty()) {
    data.remove_prefix(extend_line(buffer_, scanned_, data, delimiter_));
    const std::size_t used = split(buffer_);
    buffer_.erase(0, used);
    if (!buffer_.empty()) {  // still incomplete (all of data taken), or closed
      buffer_.append(data);
      return;
    }
  }
  buffer_.assign(data.substr(split(data)));
  release_if_empty(buffer_);
}

// Delivers the lines of `bytes`; returns how many bytes it used.
std::size_t LineOnlyReceiver::split(std::string_view bytes) {
  const std::size_t dsize = delimiter_.size();
  std::size_t pos = 0;
  while (pos < bytes.size() && has_transport() && transport().connected()) {
    const std::string_view rest = bytes.substr(pos);
    const std::size_t at = rest.find(delimiter_, scanned_);
    if (discarding_) {  // skipping the rest of an over-long line
      scanned_ = 0;
      if (at == std::string_view::npos)  // keep what may begin its delimiter
        return pos + without_partial_delimiter(rest, delimiter_);
      discarding_ = false;
      pos += at + dsize;
      continue;
    }
    if (at == std::string_view::npos) {
      const std::size_t pending = without_partial_delimiter(rest, delimiter_);
      if (pending > max_length_) {  // too long already, as soon as it is
        discarding_ = true;
        scanned_ = 0;
        pos += pending;
        line_length_exceeded(rest);
        continue;
      }
      scanned_ = scanned_up_to(rest.size(), dsize);
      return pos;
    }
    scanned_ = 0;
    pos += at + dsize;
    if (at > max_length_)
      line_length_exceeded(rest.substr(0, at));
    else
      line_received(rest.substr(0, at));
  }
  return pos;
}

}  // namespace torsion
