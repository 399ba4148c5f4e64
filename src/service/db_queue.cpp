#include "userapi/service/db_queue.hpp"

#include <deque>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace userapi::service {

namespace asio = boost::asio;

struct db_queue::impl {
    explicit impl(asio::io_context& ioc) : strand(asio::make_strand(ioc)), timer(strand) {}
    asio::strand<asio::io_context::executor_type> strand;
    asio::steady_timer timer;  // owned by strand
    std::deque<job> waiting;   // owned by strand
    bool busy = false;         // owned by strand: an operation is on the timer
};

db_queue::db_queue(asio::io_context& ioc, const core::clock& clock, std::chrono::milliseconds latency,
                   std::size_t limit)
    : clock_(clock), latency_(latency), limit_(limit), impl_(std::make_unique<impl>(ioc)) {}

db_queue::~db_queue() = default;

bool db_queue::submit(operation op, time_point deadline, operation expired) {
    // One running plus `limit_` waiting.
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= limit_ + 1) {
        pending_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    asio::post(impl_->strand, [this, j = job{std::move(op), std::move(expired), deadline}]() mutable {
        impl_->waiting.push_back(std::move(j));
        if (!impl_->busy) start_next();
    });
    return true;
}

// Runs or expires one job, never letting an exception stop the queue.
void db_queue::finish(job& j, bool run) {
    try {
        if (run)
            j.run();
        else if (j.expired)
            j.expired();
    } catch (...) {
        // The operation owns its error reporting; the queue must not stall.
    }
    pending_.fetch_sub(1, std::memory_order_relaxed);
}

void db_queue::start_next() {
    // Jobs whose waiters have all given up are dropped before they cost any latency.
    const auto now = clock_.now();
    while (!impl_->waiting.empty() && impl_->waiting.front().deadline <= now) {
        job j = std::move(impl_->waiting.front());
        impl_->waiting.pop_front();
        finish(j, false);
    }
    if (impl_->waiting.empty()) {
        impl_->busy = false;
        return;
    }
    impl_->busy = true;
    impl_->timer.expires_after(latency_);
    impl_->timer.async_wait([this](boost::system::error_code) {
        job j = std::move(impl_->waiting.front());
        impl_->waiting.pop_front();
        finish(j, true);
        start_next();
    });
}

}  // namespace userapi::service
