// The one way to the database: a FIFO of operations, at most `concurrency` running at once,
// started in arrival order, each after a fixed latency spent on a timer (never a sleeping
// thread). With concurrency 1 (the default) operations run strictly one at a time.
//
// Ownership: the FIFO, the running count and the free slots are owned by a strand on the
// io_context given to the constructor. An operation runs on one of the io_context's threads
// with a slot number in [0, concurrency) that no other running operation holds: the slot
// names the connection it may use, so a connection is only ever used by one thread at a time.
// The server runs that io_context on `concurrency` threads of its own. Deadlines are read
// from the injected clock, so tests decide what has expired.
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
    using operation = std::function<void(std::size_t slot)>;
    using expiry = std::function<void()>;
    using time_point = core::steady_time;

    // At most `limit` operations wait behind the running ones; more are refused.
    db_queue(boost::asio::io_context& ioc, const core::clock& clock, std::chrono::milliseconds latency,
             std::size_t limit, std::size_t concurrency = 1);
    ~db_queue();
    db_queue(const db_queue&) = delete;
    db_queue& operator=(const db_queue&) = delete;

    // Admits `op` unless the queue is full (then returns false and `op` never runs).
    // Admitted operations start in admission order; an exception from one is swallowed
    // so the queue keeps going (operations report their own errors).
    // An operation still waiting at `deadline` (nobody waits for its answer any more) never
    // runs: `expired` is called instead and its slot is freed for new work.
    bool submit(operation op, time_point deadline = time_point::max(), expiry expired = {});

    // Operations admitted and not finished (waiting or running).
    std::size_t depth() const { return pending_.load(std::memory_order_relaxed); }
    std::size_t concurrency() const { return concurrency_; }
    // The most depth() reaches: past it, submit() refuses (`limit` waiting plus the running ones).
    std::size_t capacity() const { return limit_ + concurrency_; }

private:
    struct job {
        operation run;
        expiry expired;
        time_point deadline;
    };
    struct impl;
    void pump();                    // on the strand
    void finish(std::size_t slot);  // on the strand

    const core::clock& clock_;
    std::chrono::milliseconds latency_;
    std::size_t limit_;
    std::size_t concurrency_;
    std::atomic<std::size_t> pending_{0};
    std::unique_ptr<impl> impl_;
};

}  // namespace userapi::service
