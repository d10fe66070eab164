#include "protocols/line_receiver.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

namespace torsion {

namespace {

void check_delimiter(const std::string& delimiter, const char* who) {
  if (delimiter.empty()) throw std::invalid_argument(std::string(who) + ": empty delimiter");
}

// After a search for `delimiter` found nothing in `size` bytes, the bytes before the
// returned offset cannot start a delimiter, whatever arrives next.
std::size_t scanned_up_to(std::size_t size, std::size_t delimiter_size) {
  return size >= delimiter_size ? size - delimiter_size + 1 : 0;
}

std::string too_long(std::size_t max_length) {
  return "line longer than " + std::to_string(max_length) + " bytes";
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
  if (processing_)
    throw std::logic_error("LineReceiver::data_received called from inside its own callback");
  if (paused_) {
    buffer_.append(data);
    return;
  }
  process(data);
}

// Parses buffer_ + incoming. When nothing is buffered the incoming bytes are parsed in
// place and only an incomplete tail is copied. Callbacks get views into work_; they never
// mutate the bytes work_ refers to (set_line_mode(extra) goes to inject_, spliced in here
// after the callback returns), so the views stay valid for the whole call.
//
//   work_: [ delivered ........ | not yet delivered ......... ]
//          0                    pos_          pos_+scanned_ (no delimiter starts before)
void LineReceiver::process(std::string_view incoming) {
  bool in_buffer = !buffer_.empty();
  if (in_buffer) {
    buffer_.append(incoming);
    work_ = buffer_;
  } else {
    work_ = incoming;
  }
  pos_ = 0;
  processing_ = true;

  // Keeps what was not delivered, however the loop ends (even by an exception).
  struct Finish {
    LineReceiver& r;
    const bool& in_buffer;
    ~Finish() {
      r.processing_ = false;
      if (in_buffer)
        r.buffer_.erase(0, r.pos_);
      else
        r.buffer_.assign(r.work_.substr(r.pos_));
      if (!r.inject_.empty()) {
        r.buffer_.insert(0, r.inject_);
        r.inject_.clear();
        r.scanned_ = 0;
      }
      r.work_ = {};
      r.pos_ = 0;
    }
  } finish{*this, in_buffer};

  for (;;) {
    if (!inject_.empty()) {  // set_line_mode(extra): extra goes ahead of the rest
      std::string spliced = std::exchange(inject_, std::string());
      spliced.append(work_.substr(pos_));
      buffer_ = std::move(spliced);
      work_ = buffer_;
      pos_ = 0;
      in_buffer = true;
      scanned_ = 0;
    }
    if (pos_ >= work_.size() || paused_ || stopped()) return;
    const std::string_view rest = work_.substr(pos_);
    if (!line_mode_) {
      pos_ = work_.size();
      scanned_ = 0;
      raw_data_received(rest);
      continue;
    }
    const std::size_t dsize = delimiter_.size();
    const std::size_t at = rest.find(delimiter_, scanned_);
    if (discarding_) {  // skipping the rest of an over-long line
      scanned_ = 0;
      if (at == std::string_view::npos) {
        pos_ += rest.size() - std::min(rest.size(), dsize - 1);  // keep a possible delimiter start
        return;
      }
      discarding_ = false;
      pos_ += at + dsize;
      continue;
    }
    if (at == std::string_view::npos) {
      if (rest.size() >= dsize && rest.size() - dsize >= max_length_) {  // no delimiter in time
        discarding_ = true;
        scanned_ = 0;
        pos_ = work_.size() - std::min(rest.size(), dsize - 1);
        line_length_exceeded(rest);
        continue;
      }
      scanned_ = scanned_up_to(rest.size(), dsize);
      return;
    }
    scanned_ = 0;
    pos_ += at + dsize;
    if (at > max_length_)
      line_length_exceeded(rest.substr(0, at));
    else
      line_received(rest.substr(0, at));
  }
}

void LineReceiver::set_raw_mode() {
  line_mode_ = false;
  discarding_ = false;
  scanned_ = 0;
  if (!processing_ && !paused_ && !buffer_.empty()) process({});
}

void LineReceiver::set_line_mode(std::string_view extra) {
  line_mode_ = true;
  if (processing_) {
    inject_.append(extra);
    return;
  }
  buffer_.insert(0, extra);
  scanned_ = 0;
  if (!paused_ && !buffer_.empty()) process({});
}

std::string LineReceiver::clear_line_buffer() {
  scanned_ = 0;
  if (processing_) {
    std::string out = std::exchange(inject_, std::string());
    out.append(work_.substr(pos_));
    pos_ = work_.size();
    return out;
  }
  return std::exchange(buffer_, std::string());
}

void LineReceiver::pause_producing() {
  paused_ = true;
  if (has_transport()) transport().pause_producing();
}

void LineReceiver::resume_producing() {
  if (!paused_) return;
  paused_ = false;
  if (has_transport()) transport().resume_producing();
  if (!processing_ && !buffer_.empty()) process({});
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

void LineOnlyReceiver::line_length_exceeded(std::string_view data) {
  (void)data;
  rejection_ = Reason(error::line_too_long, {}, too_long(max_length_));
  if (has_transport()) transport().lose_connection();
}

void LineOnlyReceiver::send_line(std::string_view line) {
  const std::array<std::string_view, 2> parts{line, delimiter_};
  transport().write_sequence(parts);
}

void LineOnlyReceiver::data_received(std::string_view data) {
  const bool in_buffer = !buffer_.empty();
  std::string_view work = data;
  if (in_buffer) {
    buffer_.append(data);
    work = buffer_;
  }
  std::size_t pos = 0;
  struct Finish {  // keeps the undelivered tail, however the loop ends
    LineOnlyReceiver& r;
    bool in_buffer;
    std::string_view& work;
    std::size_t& pos;
    ~Finish() {
      if (in_buffer)
        r.buffer_.erase(0, pos);
      else
        r.buffer_.assign(work.substr(pos));
    }
  } finish{*this, in_buffer, work, pos};

  const std::size_t dsize = delimiter_.size();
  while (pos < work.size() && has_transport() && transport().connected()) {
    const std::string_view rest = work.substr(pos);
    const std::size_t at = rest.find(delimiter_, scanned_);
    if (discarding_) {  // skipping the rest of an over-long line
      scanned_ = 0;
      if (at == std::string_view::npos) {
        pos += rest.size() - std::min(rest.size(), dsize - 1);  // keep a possible delimiter start
        return;
      }
      discarding_ = false;
      pos += at + dsize;
      continue;
    }
    if (at == std::string_view::npos) {
      if (rest.size() >= dsize && rest.size() - dsize >= max_length_) {  // no delimiter in time
        discarding_ = true;
        scanned_ = 0;
        pos = work.size() - std::min(rest.size(), dsize - 1);
        line_length_exceeded(rest);
        continue;
      }
      scanned_ = scanned_up_to(rest.size(), dsize);
      return;
    }
    scanned_ = 0;
    pos += at + dsize;
    if (at > max_length_)
      line_length_exceeded(rest.substr(0, at));
    else
      line_received(rest.substr(0, at));
  }
}

}  // namespace torsion
