#include "framework/file_sender.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "framework/file_region.hpp"
#include "framework/reason.hpp"

namespace torsion {

ByteSource::~ByteSource() = default;

namespace {

class FdSource final : public ByteSource {
 public:
  FdSource(int fd, std::optional<std::uint64_t> size, std::optional<std::int64_t> mtime)
      : fd_(fd), size_(size), mtime_(mtime) {}
  ~FdSource() override { ::close(fd_); }
  FdSource(const FdSource&) = delete;
  FdSource& operator=(const FdSource&) = delete;

  std::size_t read(std::span<char> out, std::error_code& ec) override {
    for (;;) {
      const ssize_t n = ::read(fd_, out.data(), out.size());
      if (n >= 0) {
        offset_ += static_cast<std::uint64_t>(n);
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      ec = std::error_code(errno, std::system_category());
      return 0;
    }
  }

  int file_descriptor() const noexcept override { return size_ ? fd_ : -1; }
  std::optional<std::uint64_t> size_at_open() const noexcept override { return size_; }
  std::optional<std::uint64_t> file_offset() const noexcept override { return offset_; }
  std::optional<std::int64_t> modified_at_open() const noexcept override { return mtime_; }

 private:
  int fd_;
  std::optional<std::uint64_t> size_;  // set for a regular file
  std::optional<std::int64_t> mtime_;  // set with size_
  std::uint64_t offset_ = 0;           // opened at 0; only read() moves it
};

std::error_code last_os_error() { return std::error_code(errno, std::system_category()); }

class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  std::size_t read(std::span<char> out, std::error_code&) override {
    const std::size_t n = std::min(out.size(), data_.size() - pos_);
    std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  std::size_t pos_ = 0;
};

}  // namespace

std::unique_ptr<ByteSource> open_file_source(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::system_error(last_os_error(), "open_file_source: '" + path + "'");
  struct stat st {};
  std::optional<std::uint64_t> size;
  std::optional<std::int64_t> mtime;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    size = static_cast<std::uint64_t>(st.st_size);
    mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec);
  }
  return std::make_unique<FdSource>(fd, size, mtime);
}

std::unique_ptr<ByteSource> open_regular_file(const std::string& path, std::error_code& ec) {
  ec.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ec = last_os_error();
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ec = last_os_error();
  } else if (S_ISDIR(st.st_mode)) {
    ec = std::make_error_code(std::errc::is_a_directory);
  } else if (!S_ISREG(st.st_mode)) {
    ec = std::make_error_code(std::errc::invalid_argument);
  } else {
    return std::make_unique<FdSource>(fd, static_cast<std::uint64_t>(st.st_size),
                                      static_cast<std::int64_t>(st.st_mtim.tv_sec));
  }
  ::close(fd);
  return nullptr;
}

std::unique_ptr<ByteSource> string_source(std::string data) {
  return std::make_unique<StringSource>(std::move(data));
}

FileSender::FileSender(std::size_t chunk_size) : chunk_size_(chunk_size), region_size_(chunk_size) {
  if (chunk_size == 0) throw std::invalid_argument("FileSender: chunk_size must be > 0, got 0");
}

void FileSender::set_region_size(std::size_t bytes) {
  if (bytes == 0) throw std::invalid_argument("FileSender::set_region_size: must be > 0, got 0");
  region_size_ = bytes;
}

FileSender::~FileSender() {
  if (transport_) transport_->unregister_producer();
}

void FileSender::begin_transfer(Transport& transport, std::unique_ptr<ByteSource> source,
                                Done done, std::optional<std::uint64_t> length) {
  if (transport_) throw std::logic_error("FileSender::begin_transfer: a transfer is active");
  if (!source) throw std::invalid_argument("FileSender::begin_transfer: null source");
  source_ = std::move(source);
  done_ = std::move(done);
  length_ = length;
  path_ = zero_copy_ ? Path::untried : Path::buffered;
  sent_ = 0;
  transport_ = &transport;
  try {
    transport.register_producer(*this, false);  // may call stop_producing at once
  } catch (...) {
    transport_ = nullptr;
    source_.reset();
    done_ = nullptr;
    throw;
  }
  // A region holds no memory: the first is queued now, behind what was written before
  // (an HTTP head), so both leave in this turn rather than the file a loop turn later.
  // Only with a length, so that nothing here can end the transfer (no call to `done`
  // from inside this call but the one documented).
  if (transport_ && path_ == Path::untried && length_ && *length_ > 0)
    send_region(std::min<std::uint64_t>(region_size_, *length_));
}

void FileSender::stop() {
  if (transport_) finish(make_error_code(error::cancelled), true);
}

void FileSender::resume_producing() {
  if (!transport_) return;
  if (length_ && sent_ >= *length_) {
    finish({}, true);
    return;
  }
  const std::uint64_t left = length_ ? *length_ - sent_ : UINT64_MAX;
  if (path_ != Path::buffered && send_region(std::min<std::uint64_t>(region_size_, left))) return;
  const std::uint64_t want = std::min<std::uint64_t>(chunk_size_, left);
  buffer_.resize(static_cast<std::size_t>(want));
  std::error_code ec;
  const std::size_t n = source_->read(std::span<char>(buffer_.data(), buffer_.size()), ec);
  if (ec) {
    finish(ec, true);
    return;
  }
  if (n == 0) {
    finish(length_ ? std::make_error_code(std::errc::io_error) : std::error_code(), true);
    return;
  }
  sent_ += n;
  transport_->write(std::string_view(buffer_.data(), n));
}

// The sendfile path: hands the transport the next region of the file. False when the
// source or the transport cannot do it (the caller reads and writes instead, from then
// on); true when a region was written or the transfer ended.
bool FileSender::send_region(std::uint64_t want) {
  const int fd = source_->file_descriptor();
  if (fd < 0) {
    path_ = Path::buffered;
    return false;
  }
  if (path_ == Path::untried) {
    std::optional<std::uint64_t> start = source_->file_offset();  // no system call if known
    if (!start) {
      const ::off_t at = ::lseek(fd, 0, SEEK_CUR);
      if (at < 0) {
        path_ = Path::buffered;
        return false;
      }
      start = static_cast<std::uint64_t>(at);
    }
    file_offset_ = *start;
    file_end_ = file_offset_;  // unknown yet: looked up below
  }
  if (!length_) {  // to the end: the size is looked up again each time it is reached
    if (file_offset_ >= file_end_) {
      struct stat st {};
      if (::fstat(fd, &st) != 0) {
        finish(last_os_error(), true);
        return true;
      }
      file_end_ = static_cast<std::uint64_t>(st.st_size);
      if (file_offset_ >= file_end_) {
        finish({}, true);
        return true;
      }
    }
    want = std::min(want, file_end_ - file_offset_);
  }
  auto* writer = dynamic_cast<FileWriter*>(transport_);
  if (writer == nullptr) {
    path_ = Path::buffered;
    return false;
  }
  writer->write_file(FileRegion{fd, file_offset_, want, source_});
  path_ = Path::file;
  file_offset_ += want;
  sent_ += want;
  return true;
}

void FileSender::stop_producing() {
  if (transport_) finish(make_error_code(error::cancelled), false);
}

void FileSender::finish(std::error_code ec, bool unregister) {
  Transport* t = std::exchange(transport_, nullptr);
  if (unregister) t->unregister_producer();
  source_.reset();
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(ec);  // may destroy *this: nothing after
}

}  // namespace torsion
