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
//
// Batched reads (`batch_reads` N above 1, DataLoader-like): a read submitted with
// submit_read() that takes a slot opens a batch and takes with it every read waiting behind
// it, up to N distinct keys, but never past a waiting operation of another kind (a write):
// that one, and every read queued after it, stay behind. While the batch's latency runs, reads
// that arrive join it too (up to N), until an operation of another kind is submitted: from
// then on the batch is sealed. When the latency ends the batch is sealed and its opener's
// operation runs once with every read of the batch, in arrival order: one operation, one
// latency, one slot. With N = 1 a read is an operation like any other.
// Ownership: the open batches (one per slot at most, with their reads) are owned by the
// strand until sealed; once sealed, by the operation that runs them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

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

    // A read of one key that may share its operation with other reads. Its submitter derives
    // from it to carry what the batch's operation needs.
    class read {
    public:
        explicit read(std::int64_t key) : key_(key) {}
        virtual ~read() = default;
        std::int64_t key() const { return key_; }

    private:
        std::int64_t key_;
    };
    using read_ptr = std::shared_ptr<read>;
    // Runs one batch: every read in it, in arrival order (a key may appear more than once).
    // Every read submitted to one queue must be of the kind its operation expects: a batch runs
    // its opener's operation.
    using batch_operation = std::function<void(std::size_t slot, const std::vector<read_ptr>& reads)>;

    // At most `limit` operations wait behind the running ones; more are refused.
    db_queue(boost::asio::io_context& ioc, const core::clock& clock, std::chrono::milliseconds latency,
             std::size_t limit, std::size_t concurrency = 1, std::size_t batch_reads = 1);
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
    // Admits a read (never strict: once it has a slot, or is in a batch, it runs). As submit();
    // `on_slot` is called when it takes a slot or joins a batch. It counts as an operation while
    // it waits; once in a batch, the batch is the one operation.
    bool submit_read(read_ptr r, batch_operation run, time_point deadline = time_point::max(), expiry expired = {},
                     slot_taken on_slot = {});

    // Operations admitted and not finished (waiting or running).
    std::size_t depth() const { return pending_.load(std::memory_order_relaxed); }
    std::size_t concurrency() const { return concurrency_; }
    std::size_t batch_reads() const { return batch_reads_; }
    // The most depth() reaches: past it, submit() refuses (`limit` waiting plus the running ones).
    std::size_t capacity() const { return limit_ + concurrency_; }

private:
    struct job {
        operation run;
        expiry expired;
        time_point deadline;
        slot_taken on_slot;
        bool strict = true;
        read_ptr read;  // set: a read that may be batched (batch_reads_ > 1)
        batch_operation run_batch;
    };
    struct batch;
    struct impl;
    void admit(job j);                              // on the strand
    void pump();                                    // on the strand
    void start_batch(std::size_t slot, job first);  // on the strand
    void run_batch(std::size_t slot);               // on the strand: the batch's latency ended
    void finish(std::size_t slot);                  // on the strand
    void expire(job& j);                            // calls its expiry; the caller frees what it held
    void arm_expiry(time_point deadline);           // on the strand: wake by `deadline` at the latest
    void expire_waiting();                          // on the strand: the timer fired

    const core::clock& clock_;
    std::chrono::milliseconds latency_;
    std::size_t limit_;
    std::size_t concurrency_;
    std::size_t batch_reads_;
    std::atomic<std::size_t> pending_{0};
    std::unique_ptr<impl> impl_;
};

}  // namespace userapi::service
