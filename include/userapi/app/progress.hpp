// Progress of long work on standard error (contract section 10): on a terminal a bar redrawn in
// place, at most ten times a second; otherwise a plain line at each tenth of the work, so a log
// holds at most ten of them and no escape or carriage return; then one summary line with the
// count, the seconds and the rate. The clock is injected so tests need not wait.
// Not thread-safe: the one thread doing the work reports to it.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "userapi/core/clock.hpp"

namespace userapi::app {

class progress {
public:
    // `what`: "export", "import", ...; `unit`: what is counted ("users", "pages").
    progress(std::string what, std::int64_t total, std::string unit, std::ostream& out, bool terminal,
             const core::clock& clock);
    // `done` of `total` finished (only grows).
    void update(std::int64_t done);
    // "export: 20000 users in 0.42 s (47619 users/s)", after the bar's last state. `count` is
    // what the summary names (it may differ from the unit of the bar, e.g. users after pages).
    void finish(std::int64_t count, const std::string& count_unit = "users");
    double seconds() const;

private:
    void draw(std::int64_t done);

    std::string what_, unit_;
    std::int64_t total_;
    std::ostream& out_;
    bool terminal_;
    const core::clock& clock_;
    core::steady_time start_;
    core::steady_time last_draw_{};
    int tenths_shown_ = 0;  // plain lines: the last tenth reported
    bool drawn_ = false;    // a bar is on the line
};

// Whether standard error is a terminal.
bool stderr_is_terminal();

}  // namespace userapi::app
