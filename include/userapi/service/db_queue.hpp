// The one way to the database: a FIFO of operations run strictly one at a time, each after a
// fixed latency spent on a timer (never a sleeping thread).
//
// Ownership: the FIFO and its timer are owned by a strand on the io_context given to the
// constructor; every operation runs on that strand. The server runs that io_context on one
// thread of its own, which is then the sole user of the repository the operations touch.
// Deadlines are read from the injected clock, so tests decide what has expired.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "userapi/core/clock.hpp"

namespace boost::asio {
class io_context;
}

namespace userapi::service {

class db_queue {
public:
    using operation = std::function<void()>;
    using time_point = core::steady_time;

    // At most `limit` operations wait behind the running one; more are refused.
    db_queue(boost::asio::io_context& ioc, const core::clock& clock, std::chrono::milliseconds latency,
             std::size_t limit);
    ~db_queue();
    db_queue(const db_queue&) = delete;
    db_queue& operator=(const db_queue&) = delete;

    // Admits `op` unless the queue is full (then returns false and `op` never runs).
    // Admitted operations run in admission order; an exception from one is swallowed
    // so the queue keeps going (operations report their own errors).
    // An operation still waiting at `deadline` (nobody waits for its answer any more) never
    // runs: `expired` is called instead and its slot is freed for new work.
    bool submit(operation op, time_point deadline = time_point::max(), operation expired = {});

    // Operations admitted and not finished (waiting or running).
    std::size_t depth() const { return pending_.load(std::memory_order_relaxed); }

private:
    struct job {
        operation run;
        operation expired;
        time_point deadline;
    };
    struct impl;
    void finish(job& j, bool run);
    void start_next();

    const core::clock& clock_;
    std::chrono::milliseconds latency_;
    std::size_t limit_;
    std::atomic<std::size_t> pending_{0};
    std::unique_ptr<impl> impl_;  // strand, timer and the FIFO: owned by the strand
};

}  // namespace userapi::service
