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
    asio::steady_timer timer;       // owned by strand
    std::deque<operation> waiting;  // owned by strand
    bool busy = false;              // owned by strand: an operation is on the timer
};

db_queue::db_queue(asio::io_context& ioc, std::chrono::milliseconds latency, std::size_t limit)
    : latency_(latency), limit_(limit), impl_(std::make_unique<impl>(ioc)) {}

db_queue::~db_queue() = default;

bool db_queue::submit(operation op) {
    // One running plus `limit_` waiting.
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= limit_ + 1) {
        pending_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    asio::post(impl_->strand, [this, op = std::move(op)]() mutable {
        impl_->waiting.push_back(std::move(op));
        if (!impl_->busy) start_next();
    });
    return true;
}

void db_queue::start_next() {
    if (impl_->waiting.empty()) {
        impl_->busy = false;
        return;
    }
    impl_->busy = true;
    impl_->timer.expires_after(latency_);
    impl_->timer.async_wait([this](boost::system::error_code) {
        operation op = std::move(impl_->waiting.front());
        impl_->waiting.pop_front();
        try {
            op();
        } catch (...) {
            // The operation owns its error reporting; the queue must not stall.
        }
        pending_.fetch_sub(1, std::memory_order_relaxed);
        start_next();
    });
}

}  // namespace userapi::service
