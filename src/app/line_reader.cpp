#include "userapi/app/line_reader.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace userapi::app {

line_reader::line_reader(int fd, std::size_t max_line) : fd_(fd), max_line_(max_line) {
    buf_.resize(std::max<std::size_t>(max_line + 1, 1 << 16) * 2);
}

bool line_reader::fill() {
    if (eof_) return false;
    if (start_ > 0) {  // keep the partial line, at the front
        std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
        end_ -= start_;
        start_ = 0;
    }
    for (;;) {
        const ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
        if (n > 0) {
            end_ += static_cast<std::size_t>(n);
            return true;
        }
        if (n == 0) {
            eof_ = true;
            return false;
        }
        if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "read");
    }
}

line_reader::status line_reader::next(std::string_view& line) {
    std::size_t scanned = start_;
    for (;;) {
        const void* nl = std::memchr(buf_.data() + scanned, '\n', end_ - scanned);
        if (nl) {
            const auto at = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
            ++number_;
            if (at - start_ > max_line_) return status::too_long;
            line = std::string_view(buf_.data() + start_, at - start_);
            start_ = at + 1;
            return status::line;
        }
        if (end_ - start_ > max_line_) {
            ++number_;
            return status::too_long;
        }
        scanned = end_ - start_;  // after fill() the unread bytes start at 0
        if (!fill()) {
            if (end_ == start_) return status::end;
            ++number_;  // the last line has no "\n"
            line = std::string_view(buf_.data() + start_, end_ - start_);
            start_ = end_;
            return status::line;
        }
    }
}

}  // namespace userapi::app
