#include "userapi/app/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace userapi::app {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

progress::progress(std::string what, std::int64_t total, std::string unit, std::ostream& out, bool terminal,
                   const core::clock& clock)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      out_(out),
      terminal_(terminal),
      clock_(clock),
      start_(clock.now()) {}

double progress::seconds() const { return std::chrono::duration<double>(clock_.now() - start_).count(); }

void progress::update(std::int64_t done) {
    if (total_ <= 0) return;
    if (terminal_) {
        const auto now = clock_.now();
        if (drawn_ && done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        draw(done);
        return;
    }
    const int tenths = static_cast<int>(done * 10 / total_);
    if (tenths <= tenths_shown_) return;
    tenths_shown_ = tenths;
    out_ << what_ << ": " << done * 100 / total_ << " % (" << done << " of " << total_ << " " << unit_ << ")\n"
         << std::flush;
}

void progress::draw(std::int64_t done) {
    constexpr int width = 30;
    const int filled = static_cast<int>(done * width / total_);
    out_ << "\r" << what_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
         << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << done * 100 / total_ << " % " << done
         << "/" << total_ << " " << unit_ << "\x1b[K" << std::flush;
    drawn_ = true;
}

void progress::finish(std::int64_t count, const std::string& count_unit) {
    const double s = seconds();
    if (drawn_) out_ << "\n";
    char line[160];
    std::snprintf(line, sizeof line, " in %.2f s (%.0f %s/s)", s, s > 0 ? static_cast<double>(count) / s : 0.0,
                  count_unit.c_str());
    out_ << what_ << ": " << count << " " << count_unit << line << "\n" << std::flush;
}

}  // namespace userapi::app
