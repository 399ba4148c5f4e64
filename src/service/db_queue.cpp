#include "userapi/service/db_queue.hpp"

#include <deque>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace userapi::service {

namespace asio = boost::asio;

struct db_queue::impl {
    impl(asio::io_context& ioc, std::size_t slots) : strand(asio::make_strand(ioc)) {
        for (std::size_t i = 0; i < slots; ++i) {
            timers.emplace_back(ioc);  // not on the strand: operations of different slots run in parallel
            free_slots.push_back(slots - 1 - i);
        }
    }
    asio::strand<asio::io_context::executor_type> strand;
    std::deque<job> waiting;                 // owned by strand
    std::vector<std::size_t> free_slots;     // owned by strand
    std::vector<asio::steady_timer> timers;  // one per slot, used by the operation holding it
};

db_queue::db_queue(asio::io_context& ioc, const core::clock& clock, std::chrono::milliseconds latency,
                   std::size_t limit, std::size_t concurrency)
    : clock_(clock),
      latency_(latency),
      limit_(limit),
      concurrency_(concurrency ? concurrency : 1),
      impl_(std::make_unique<impl>(ioc, concurrency_)) {}

db_queue::~db_queue() = default;

bool db_queue::submit(operation op, time_point deadline, expiry expired) {
    // `concurrency_` running plus `limit_` waiting.
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= capacity()) {
        pending_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    asio::post(impl_->strand, [this, j = job{std::move(op), std::move(expired), deadline}]() mutable {
        impl_->waiting.push_back(std::move(j));
        pump();
    });
    return true;
}

// Starts waiting jobs while a slot is free. Jobs whose waiters have all given up are dropped
// before they cost any latency.
void db_queue::pump() {
    auto& m = *impl_;
    while (!m.waiting.empty()) {
        if (m.waiting.front().deadline <= clock_.now()) {
            job j = std::move(m.waiting.front());
            m.waiting.pop_front();
            try {
                if (j.expired) j.expired();
            } catch (...) {
                // The operation owns its error reporting; the queue must not stall.
            }
            pending_.fetch_sub(1, std::memory_order_relaxed);
            continue;
        }
        if (m.free_slots.empty()) return;
        const std::size_t slot = m.free_slots.back();
        m.free_slots.pop_back();
        auto& timer = m.timers[slot];
        timer.expires_after(latency_);
        timer.async_wait([this, slot, j = std::move(m.waiting.front())](boost::system::error_code) mutable {
            try {
                j.run(slot);
            } catch (...) {
                // The operation owns its error reporting; the queue must not stall.
            }
            asio::post(impl_->strand, [this, slot] { finish(slot); });
        });
        m.waiting.pop_front();
    }
}

void db_queue::finish(std::size_t slot) {
    impl_->free_slots.push_back(slot);
    pending_.fetch_sub(1, std::memory_order_relaxed);
    pump();
}

}  // namespace userapi::service
