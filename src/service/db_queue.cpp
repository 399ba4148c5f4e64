#include "userapi/service/db_queue.hpp"

#include <algorithm>
#include <deque>
#include <unordered_set>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace userapi::service {

namespace asio = boost::asio;

// Reads sharing one operation. Owned by the strand while it is open (in impl::open), by the
// operation running it once sealed and handed over.
struct db_queue::batch {
    std::vector<read_ptr> reads;            // in arrival order
    std::unordered_set<std::int64_t> keys;  // the distinct keys of `reads`: at most batch_reads_
    batch_operation run;                    // its opener's
    bool sealed = false;                    // nothing joins it any more
};

struct db_queue::impl {
    impl(asio::io_context& c, std::size_t slots) : ioc(c), strand(asio::make_strand(c)), expiry(strand), open(slots) {
        for (std::size_t i = 0; i < slots; ++i) {
            timers.emplace_back(c);  // not on the strand: operations of different slots run in parallel
            free_slots.push_back(slots - 1 - i);
        }
    }
    asio::io_context& ioc;
    asio::strand<asio::io_context::executor_type> strand;
    std::deque<job> waiting;                   // owned by strand
    std::vector<std::size_t> free_slots;       // owned by strand
    std::vector<asio::steady_timer> timers;    // one per slot, used by the operation holding it
    asio::steady_timer expiry;                 // owned by strand: wakes the queue at the earliest deadline
    time_point armed_at = time_point::max();   // owned by strand: when `expiry` fires; max: idle
    std::vector<std::shared_ptr<batch>> open;  // owned by strand: by slot, the batch in its latency, if any
};

db_queue::db_queue(asio::io_context& ioc, const core::clock& clock, std::chrono::milliseconds latency,
                   std::size_t limit, std::size_t concurrency, std::size_t batch_reads)
    : clock_(clock),
      latency_(latency),
      limit_(limit),
      concurrency_(concurrency ? concurrency : 1),
      batch_reads_(batch_reads ? batch_reads : 1),
      impl_(std::make_unique<impl>(ioc, concurrency_)) {}

db_queue::~db_queue() = default;

bool db_queue::submit(operation op, time_point deadline, expiry expired, slot_taken on_slot, bool strict) {
    // `concurrency_` running plus `limit_` waiting.
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= capacity()) {
        pending_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    asio::post(impl_->strand, [this, j = job{std::move(op), std::move(expired), deadline, std::move(on_slot),
                                             strict}]() mutable { admit(std::move(j)); });
    return true;
}

bool db_queue::submit_read(read_ptr r, batch_operation run, time_point deadline, expiry expired, slot_taken on_slot) {
    if (batch_reads_ == 1)  // v1: a read is an operation of its own
        return submit([r = std::move(r), run = std::move(run)](std::size_t slot) { run(slot, {r}); }, deadline,
                      std::move(expired), std::move(on_slot), false);
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= capacity()) {
        pending_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    job j{{}, std::move(expired), deadline, std::move(on_slot), false, std::move(r), std::move(run)};
    asio::post(impl_->strand, [this, j = std::move(j)]() mutable { admit(std::move(j)); });
    return true;
}

namespace {
void call_on_slot(const std::function<void()>& f) {
    if (!f) return;
    try {
        f();
    } catch (...) {
    }
}
}  // namespace

void db_queue::admit(job j) {
    auto& m = *impl_;
    if (j.read) {
        // Nothing waits in front of it: a batch in its latency, not sealed, takes it if it has
        // room (or reads its key already). Anything waiting would be in front of it: it waits.
        if (m.waiting.empty()) {
            const auto key = j.read->key();
            for (auto& b : m.open) {
                if (!b || b->sealed) continue;
                const bool known = b->keys.count(key) > 0;
                if (!known && b->keys.size() >= batch_reads_) continue;
                call_on_slot(j.on_slot);
                if (!known) b->keys.insert(key);
                b->reads.push_back(std::move(j.read));
                pending_.fetch_sub(1, std::memory_order_relaxed);  // the batch is the operation
                return;
            }
        }
    } else {
        // Another kind of operation (a write) is never overtaken: no read from now on joins a
        // batch that opened before it.
        for (auto& b : m.open)
            if (b) b->sealed = true;
    }
    const auto deadline = j.deadline;
    m.waiting.push_back(std::move(j));
    pump();
    if (!m.waiting.empty()) arm_expiry(deadline);
}

// Opens a batch in `slot` with `first` and every read waiting behind it, up to batch_reads_
// keys, stopping at the first operation of another kind; then its latency.
void db_queue::start_batch(std::size_t slot, job first) {
    auto& m = *impl_;
    auto b = std::make_shared<batch>();
    b->run = std::move(first.run_batch);
    call_on_slot(first.on_slot);
    b->keys.insert(first.read->key());
    b->reads.push_back(std::move(first.read));
    const auto now = clock_.now();
    while (!m.waiting.empty() && m.waiting.front().read) {
        auto& w = m.waiting.front();
        if (w.deadline <= now) {
            job gone = std::move(w);
            m.waiting.pop_front();
            expire(gone);
            pending_.fetch_sub(1, std::memory_order_relaxed);
            continue;
        }
        const auto key = w.read->key();
        const bool known = b->keys.count(key) > 0;
        if (!known && b->keys.size() >= batch_reads_) break;
        call_on_slot(w.on_slot);
        if (!known) b->keys.insert(key);
        b->reads.push_back(std::move(w.read));
        m.waiting.pop_front();
        pending_.fetch_sub(1, std::memory_order_relaxed);
    }
    b->sealed = !m.waiting.empty();  // full, or a write waits: whatever comes now is behind it
    m.open[slot] = b;
    auto& timer = m.timers[slot];
    timer.expires_after(latency_);
    timer.async_wait(asio::bind_executor(m.strand, [this, slot](boost::system::error_code) { run_batch(slot); }));
}

// The batch's latency ended: sealed now, its statement goes out with the reads it gathered,
// off the strand (operations of different slots run in parallel).
void db_queue::run_batch(std::size_t slot) {
    auto& m = *impl_;
    std::shared_ptr<batch> b = std::move(m.open[slot]);
    b->sealed = true;
    asio::post(m.ioc, [this, slot, b = std::move(b)] {
        try {
            b->run(slot, b->reads);
        } catch (...) {
            // The operation owns its error reporting; the queue must not stall.
        }
        asio::post(impl_->strand, [this, slot] { finish(slot); });
    });
}

void db_queue::expire(job& j) {
    try {
        if (j.expired) j.expired();
    } catch (...) {
        // The operation owns its error reporting; the queue must not stall.
    }
}

void db_queue::arm_expiry(time_point deadline) {
    auto& m = *impl_;
    if (deadline == time_point::max() || deadline >= m.armed_at) return;
    m.armed_at = deadline;
    const auto left = deadline - clock_.now();
    m.expiry.expires_after(left > time_point::duration::zero() ? left : time_point::duration::zero());
    m.expiry.async_wait([this](boost::system::error_code ec) {
        if (ec == asio::error::operation_aborted) return;
        expire_waiting();
    });
}

// Every waiting job past its deadline expires now, wherever it is in the FIFO; the timer is
// armed again for the earliest deadline left.
void db_queue::expire_waiting() {
    auto& m = *impl_;
    m.armed_at = time_point::max();
    const auto now = clock_.now();
    auto next = time_point::max();
    for (auto it = m.waiting.begin(); it != m.waiting.end();) {
        if (it->deadline <= now) {
            job j = std::move(*it);
            it = m.waiting.erase(it);
            expire(j);
            pending_.fetch_sub(1, std::memory_order_relaxed);
        } else {
            next = std::min(next, it->deadline);
            ++it;
        }
    }
    if (!m.waiting.empty()) arm_expiry(next);
}

// Starts waiting jobs while a slot is free. Jobs whose waiters have all given up are dropped
// before they cost any latency; a job whose deadline passes during its latency is dropped
// then, unrun, just before it would have run.
void db_queue::pump() {
    auto& m = *impl_;
    while (!m.waiting.empty()) {
        if (m.waiting.front().deadline <= clock_.now()) {
            job j = std::move(m.waiting.front());
            m.waiting.pop_front();
            expire(j);
            pending_.fetch_sub(1, std::memory_order_relaxed);
            continue;
        }
        if (m.free_slots.empty()) return;
        const std::size_t slot = m.free_slots.back();
        m.free_slots.pop_back();
        job j = std::move(m.waiting.front());
        m.waiting.pop_front();
        if (j.read) {
            start_batch(slot, std::move(j));
            continue;
        }
        call_on_slot(j.on_slot);
        auto& timer = m.timers[slot];
        timer.expires_after(latency_);
        timer.async_wait([this, slot, j = std::move(j)](boost::system::error_code) mutable {
            // The last check: past the deadline now, the caller has been told "not performed".
            if (j.strict && j.deadline <= clock_.now()) {
                expire(j);
            } else {
                try {
                    j.run(slot);
                } catch (...) {
                    // The operation owns its error reporting; the queue must not stall.
                }
            }
            asio::post(impl_->strand, [this, slot] { finish(slot); });
        });
    }
    if (m.armed_at != time_point::max()) {  // nothing waits: let the io_context go idle
        m.armed_at = time_point::max();
        m.expiry.cancel();
    }
}

void db_queue::finish(std::size_t slot) {
    impl_->free_slots.push_back(slot);
    pending_.fetch_sub(1, std::memory_order_relaxed);
    pump();
}

}  // namespace userapi::service
