// The one way to the database: a FIFO of operations, at most `concurrency` running at once,
// started in arrival order, each after a fixed latency spent on a timer (never a sleeping
// thread). With concurrency 1 (the default) operations run strictly one at a time.
//
// Deadlines (contract 8.2): an operation either runs or expires, never both, and the queue
// alone decides which. It expires when its deadline passes while it waits (a timer wakes the
// queue at the earliest deadline, so nobody waits past it for a slot) or, for a `strict` one
// (a write), during its simulated latency: the deadline is checked last, just before the
// operation runs, that is before its statement is sent. Once it runs, it runs to its end; its
// caller gets its real outcome. (A read that has its slot runs even past its deadline: its
// waiters have had their 504, and its result still fills the cache.)
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
    using slot_taken = std::function<void()>;
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
    // An operation whose `deadline` passes while it waits (or, when `strict`, also during its
    // latency) never runs: `expired` is called instead, once, and its slot is freed.
    // `on_slot`, when given, is called (on the queue's strand) when it takes a slot, before
    // its latency: from then on it is no longer waiting.
    bool submit(operation op, time_point deadline = time_point::max(), expiry expired = {}, slot_taken on_slot = {},
                bool strict = true);

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
        slot_taken on_slot;
        bool strict = true;
    };
    struct impl;
    void pump();                           // on the strand
    void finish(std::size_t slot);         // on the strand
    void expire(job& j);                   // calls its expiry; the caller frees what it held
    void arm_expiry(time_point deadline);  // on the strand: wake by `deadline` at the latest
    void expire_waiting();                 // on the strand: the timer fired

    const core::clock& clock_;
    std::chrono::milliseconds latency_;
    std::size_t limit_;
    std::size_t concurrency_;
    std::atomic<std::size_t> pending_{0};
    std::unique_ptr<impl> impl_;
};

}  // namespace userapi::service
