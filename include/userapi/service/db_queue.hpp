// The one way to the database: a FIFO of operations run strictly one at a time, each after a
// fixed latency spent on a timer (never a sleeping thread).
//
// Ownership: the queue and its timer are owned by a strand on the io_context given to the
// constructor; every operation runs on that strand. When that io_context is run by a single
// thread, that thread is the sole user of the repository the operations touch.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace userapi::service {

class db_queue {
public:
    using operation = std::function<void()>;
    using time_point = std::chrono::steady_clock::time_point;

    // At most `limit` operations wait behind the running one; more are refused.
    db_queue(boost::asio::io_context& ioc, std::chrono::milliseconds latency, std::size_t limit);
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
    std::chrono::milliseconds latency() const { return latency_; }
    std::size_t limit() const { return limit_; }

private:
    struct job {
        operation run;
        operation expired;
        time_point deadline;
    };
    struct impl;
    void finish(job& j, bool run);
    void start_next();

    std::chrono::milliseconds latency_;
    std::size_t limit_;
    std::atomic<std::size_t> pending_{0};
    std::unique_ptr<impl> impl_;  // strand, timer and the FIFO: owned by the strand
};

}  // namespace userapi::service
