#include "userapi/service/read_watchdog.hpp"

#include <atomic>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace userapi::service {

namespace asio = boost::asio;

// One armed read. `state` decides between the timer and disarm(), whichever is first.
struct read_watchdog::watch {
    enum : int { armed, fired, ended };
    explicit watch(asio::io_context& ioc) : timer(ioc) {}
    asio::steady_timer timer;  // used on the watchdog's thread only
    std::atomic<int> state{armed};
    std::function<void()> overdue;
};

struct read_watchdog::impl {
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
    std::thread thread{[this] { ioc.run(); }};
};

read_watchdog::read_watchdog(std::chrono::milliseconds timeout) : timeout_(timeout), impl_(std::make_unique<impl>()) {}

read_watchdog::~read_watchdog() {
    impl_->work.reset();
    impl_->ioc.stop();
    impl_->thread.join();
}

read_watchdog::handle read_watchdog::arm(std::function<void()> overdue) {
    auto w = std::make_shared<watch>(impl_->ioc);
    w->overdue = std::move(overdue);
    asio::post(impl_->ioc, [w, at = asio::steady_timer::clock_type::now() + timeout_] {
        w->timer.expires_at(at);
        w->timer.async_wait([w](boost::system::error_code ec) {
            int expected = watch::armed;
            if (!ec && w->state.compare_exchange_strong(expected, watch::fired)) w->overdue();
            w->overdue = nullptr;  // what it holds (the read's waiters) goes now, not at shutdown
        });
    });
    return w;
}

bool read_watchdog::disarm(const handle& h) {
    int expected = watch::armed;
    if (!h->state.compare_exchange_strong(expected, watch::ended)) return true;
    asio::post(impl_->ioc, [h] { h->timer.cancel(); });
    return false;
}

}  // namespace userapi::service
