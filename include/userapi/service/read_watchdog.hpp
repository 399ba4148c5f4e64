// Timers for reads sent to the store (contract 8.4): a read arms one when it is sent, after
// the DB queue and the simulated latency; if the read has not ended when the timer fires,
// `overdue` runs, once, so its waiters can be answered without it. Whichever comes first —
// the read's end (disarm) or the timer — decides; the read itself goes on either way.
//
// The timers run on a thread of their own: the DB queue's threads may all be waiting on a
// store that does not answer, and the I/O threads are the hot path's. Thread-safe: arm and
// disarm may be called from any thread; `overdue` runs on the watchdog's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace userapi::service {

class read_watchdog {
public:
    struct watch;
    using handle = std::shared_ptr<watch>;

    explicit read_watchdog(std::chrono::milliseconds timeout);
    ~read_watchdog();  // stops and joins its thread; timers not yet fired never fire
    read_watchdog(const read_watchdog&) = delete;
    read_watchdog& operator=(const read_watchdog&) = delete;

    handle arm(std::function<void()> overdue);
    // The read ended. True when its timer had fired first (`overdue` ran, or is running).
    bool disarm(const handle& h);
    std::chrono::milliseconds timeout() const { return timeout_; }

private:
    struct impl;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<impl> impl_;
};

}  // namespace userapi::service
