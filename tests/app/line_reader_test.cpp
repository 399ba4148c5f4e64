// The import's line reader: lines across buffer boundaries, a last line without its "\n", and a
// line over the limit reported without being held.
#include "userapi/app/line_reader.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

using userapi::app::line_reader;

namespace {

// A file holding `text`, open for reading; closed when it goes.
struct input {
    explicit input(const std::string& text) {
        FILE* f = std::tmpfile();
        std::fwrite(text.data(), 1, text.size(), f);
        std::fflush(f);
        fd = ::dup(fileno(f));
        std::fclose(f);
        ::lseek(fd, 0, SEEK_SET);
    }
    ~input() { ::close(fd); }
    int fd;
};

}  // namespace

TEST(LineReader, ReadsLinesAndALastLineWithoutItsEnd) {
    input in("one\n\nthree\nfour");
    line_reader r(in.fd, 100);
    std::string_view l;
    for (const char* expected : {"one", "", "three", "four"}) {
        ASSERT_EQ(r.next(l), line_reader::status::line);
        EXPECT_EQ(l, expected);
    }
    EXPECT_EQ(r.number(), 4u);
    EXPECT_EQ(r.next(l), line_reader::status::end);
}

// 200,000 lines of varied length cross every buffer boundary in one piece.
TEST(LineReader, LinesSpanningBuffersArriveWhole) {
    std::string text;
    for (int i = 0; i < 200000; ++i)
        text += std::string(static_cast<std::size_t>(i % 97), 'x') + std::to_string(i) + "\n";
    input in(text);
    line_reader r(in.fd, 1000);
    std::string_view l;
    for (int i = 0; i < 200000; ++i) {
        ASSERT_EQ(r.next(l), line_reader::status::line) << i;
        ASSERT_EQ(l, std::string(static_cast<std::size_t>(i % 97), 'x') + std::to_string(i));
    }
    EXPECT_EQ(r.next(l), line_reader::status::end);
}

TEST(LineReader, ALineOverTheLimitIsReportedWithItsNumber) {
    input in("ok\n" + std::string(200000, 'y') + "\nafter\n");
    line_reader r(in.fd, 1000);
    std::string_view l;
    ASSERT_EQ(r.next(l), line_reader::status::line);
    EXPECT_EQ(r.next(l), line_reader::status::too_long);
    EXPECT_EQ(r.number(), 2u);
}

TEST(LineReader, ExactlyTheLimitIsALine) {
    input in(std::string(1000, 'z') + "\n" + std::string(1001, 'z'));
    line_reader r(in.fd, 1000);
    std::string_view l;
    ASSERT_EQ(r.next(l), line_reader::status::line);
    EXPECT_EQ(l.size(), 1000u);
    EXPECT_EQ(r.next(l), line_reader::status::too_long);
}
