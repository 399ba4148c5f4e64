// A one-method clock, so TTL and refill logic can be tested without waiting.
#pragma once

#include <atomic>
#include <chrono>

namespace userapi::core {

using steady_time = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;

class clock {
public:
    virtual ~clock() = default;
    virtual steady_time now() const = 0;
};

// The real monotonic clock.
class system_clock final : public clock {
public:
    steady_time now() const override { return std::chrono::steady_clock::now(); }
};

// A clock that only moves when a test says so. Thread-safe: tests may advance it
// while server threads read it.
class manual_clock final : public clock {
public:
    explicit manual_clock(steady_time start = steady_time{} + std::chrono::hours(1))
        : now_(start.time_since_epoch().count()) {}
    steady_time now() const override { return steady_time(duration(now_.load())); }
    void advance(duration d) { now_.fetch_add(d.count()); }
    void set(steady_time t) { now_.store(t.time_since_epoch().count()); }

private:
    std::atomic<duration::rep> now_;
};

}  // namespace userapi::core
