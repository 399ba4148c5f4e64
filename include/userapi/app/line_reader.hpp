// Lines of a file or a pipe, read through a fixed buffer: memory stays the same however long the
// input, and a line longer than the limit is reported, never held. Not thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace userapi::app {

class line_reader {
public:
    // Reads `fd` (not closed here); lines of at most `max_line` bytes, line end excluded.
    line_reader(int fd, std::size_t max_line);

    enum class status { line, end, too_long };
    // The next line (without its "\n"; valid until the next call). A last line without "\n"
    // counts as a line. Throws std::system_error when reading fails.
    status next(std::string_view& line);
    // 1-based number of the line next() returned last.
    std::size_t number() const { return number_; }

private:
    bool fill();  // false at the end of the input

    int fd_;
    std::size_t max_line_;
    std::string buf_;
    std::size_t start_ = 0, end_ = 0;  // unread bytes: buf_[start_, end_)
    std::size_t number_ = 0;
    bool eof_ = false;
};

}  // namespace userapi::app
