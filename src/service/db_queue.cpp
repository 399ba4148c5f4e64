#include "userapi/service/db_queue.hpp"

#include <algorithm>
#include <deque>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace userapi::service {

namespace asio = boost::asio;

struct db_queue::impl {
    impl(asio::io_context& ioc, std::size_t slots) : strand(asio::make_strand(ioc)), expiry(strand) {
        for (std::size_t i = 0; i < slots; ++i) {
            timers.emplace_back(ioc);  // not on the strand: operations of different slots run in parallel
            free_slots.push_back(slots - 1 - i);
        }
    }
    asio::strand<asio::io_context::executor_type> strand;
    std::deque<job> waiting;                  // owned by strand
    std::vector<std::size_t> free_slots;      // owned by strand
    std::vector<asio::steady_timer> timers;   // one per slot, used by the operation holding it
    asio::steady_timer expiry;                // owned by strand: wakes the queue at the earliest deadline
    time_point armed_at = time_point::max();  // owned by strand: when `expiry` fires; max: idle
};

db_queue::db_queue(asio::io_context& ioc, const core::clock& clock, std::chrono::milliseconds latency,
                   std::size_t limit, std::size_t concurrency)
    : clock_(clock),
      latency_(latency),
      limit_(limit),
      concurrency_(concurrency ? concurrency : 1),
      impl_(std::make_unique<impl>(ioc, concurrency_)) {}

db_queue::~db_queue() = default;

bool db_queue::submit(operation op, time_point deadline, expiry expired, slot_taken on_slot, bool strict) {
    // `concurrency_` running plus `limit_` waiting.
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= capacity()) {
        pending_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    asio::post(impl_->strand,
               [this, j = job{std::move(op), std::move(expired), deadline, std::move(on_slot), strict}]() mutable {
                   const auto deadline = j.deadline;
                   impl_->waiting.push_back(std::move(j));
                   pump();
                   if (!impl_->waiting.empty()) arm_expiry(deadline);
               });
    return true;
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
        if (j.on_slot) {
            try {
                j.on_slot();
            } catch (...) {
            }
        }
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
