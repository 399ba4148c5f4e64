// Progress on standard error: a line per tenth (no escape, no carriage return) when it is not a
// terminal, a bar redrawn in place when it is, and one summary line with count, time and rate.
#include "userapi/app/progress.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <vector>

using namespace std::chrono_literals;
using userapi::app::progress;
using userapi::core::manual_clock;

namespace {

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace

TEST(Progress, PlainLinesAtEachTenthThenASummary) {
    manual_clock clock;
    std::ostringstream out;
    progress p("import", 20000, "users", out, false, clock);
    for (int i = 1; i <= 20000; ++i) p.update(i);
    clock.advance(2s);
    p.finish(20000);
    const auto l = lines(out.str());
    ASSERT_EQ(l.size(), 11u) << out.str();
    EXPECT_EQ(l[0], "import: 10 % (2000 of 20000 users)");
    EXPECT_EQ(l[9], "import: 100 % (20000 of 20000 users)");
    EXPECT_EQ(l[10], "import: 20000 users in 2.00 s (10000 users/s)");
    EXPECT_EQ(out.str().find_first_of("\r\x1b"), std::string::npos);
}

// Updates in big steps skip tenths rather than print several lines at once; a line says the
// percentage reached, not the tenth crossed.
TEST(Progress, BigStepsPrintOneLineEach) {
    manual_clock clock;
    std::ostringstream out;
    progress p("export", 100, "users", out, false, clock);
    p.update(35);
    p.update(35);
    p.update(100);
    p.finish(100);
    const auto l = lines(out.str());
    ASSERT_EQ(l.size(), 3u) << out.str();
    EXPECT_EQ(l[0], "export: 35 % (35 of 100 users)");
}

TEST(Progress, NothingToDoIsOnlyTheSummary) {
    manual_clock clock;
    std::ostringstream out;
    progress p("export", 0, "users", out, false, clock);
    p.update(0);
    p.finish(0);
    EXPECT_EQ(out.str(), "export: 0 users in 0.00 s (0 users/s)\n");
}

// On a terminal: one line redrawn with a carriage return, at most every 100 ms (and at the end).
TEST(Progress, TerminalBarRedrawsInPlace) {
    manual_clock clock;
    std::ostringstream out;
    progress p("migrate", 1000, "users", out, true, clock);
    for (int i = 1; i <= 1000; ++i) {
        if (i % 100 == 0) clock.advance(150ms);
        p.update(i);
    }
    p.finish(1000);
    const auto text = out.str();
    const auto draws = std::count(text.begin(), text.end(), '\r');
    EXPECT_GE(draws, 10);
    EXPECT_LE(draws, 12) << "redrawn at most every 100 ms";
    EXPECT_NE(text.find("] 100 % 1000/1000 users"), std::string::npos) << text;
    const auto l = lines(text);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[1].rfind("migrate: 1000 users in ", 0), 0u) << l[1];
}
