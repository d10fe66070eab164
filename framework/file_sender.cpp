#include "framework/file_sender.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "framework/reason.hpp"

namespace torsion {

ByteSource::~ByteSource() = default;

namespace {

class FdSource final : public ByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  ~FdSource() override { ::close(fd_); }
  FdSource(const FdSource&) = delete;
  FdSource& operator=(const FdSource&) = delete;

  std::size_t read(std::span<char> out, std::error_code& ec) override {
    for (;;) {
      const ssize_t n = ::read(fd_, out.data(), out.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      ec = std::error_code(errno, std::system_category());
      return 0;
    }
  }

 private:
  int fd_;
};

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
    throw std::system_error(std::error_code(errno, std::system_category()),
                            "open_file_source: '" + path + "'");
  return std::make_unique<FdSource>(fd);
}

std::unique_ptr<ByteSource> string_source(std::string data) {
  return std::make_unique<StringSource>(std::move(data));
}

FileSender::FileSender(std::size_t chunk_size) : chunk_size_(chunk_size) {
  if (chunk_size == 0) throw std::invalid_argument("FileSender: chunk_size must be > 0, got 0");
}

FileSender::~FileSender() {
  if (transport_) transport_->unregister_producer();
}

void FileSender::begin_transfer(Transport& transport, std::unique_ptr<ByteSource> source,
                                Done done) {
  if (transport_) throw std::logic_error("FileSender::begin_transfer: a transfer is active");
  if (!source) throw std::invalid_argument("FileSender::begin_transfer: null source");
  source_ = std::move(source);
  done_ = std::move(done);
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
}

void FileSender::stop() {
  if (transport_) finish(make_error_code(error::cancelled), true);
}

void FileSender::resume_producing() {
  if (!transport_) return;
  buffer_.resize(chunk_size_);
  std::error_code ec;
  const std::size_t n = source_->read(std::span<char>(buffer_.data(), buffer_.size()), ec);
  if (ec) {
    finish(ec, true);
    return;
  }
  if (n == 0) {
    finish({}, true);
    return;
  }
  sent_ += n;
  transport_->write(std::string_view(buffer_.data(), n));
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
