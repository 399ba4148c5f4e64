// A connection's socket with one deadline, the way a busy server keeps time: reads and writes
// only move `deadline`; one timer per connection fires at most once per deadline period, and
// closes the socket only if the deadline has really passed (it re-arms itself otherwise). So
// a request costs no timer operation, where a timer per read and write (Beast's tcp_stream)
// costs two.
//
// Not thread-safe: used by its connection's I/O thread alone. Shared (by pointer) with the
// timer's handler, which may run after the session has ended; the session cancels the timer
// when it ends, which releases it.
#pragma once

#include <chrono>
#include <ctime>
#include <memory>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>

namespace userapi::http {

template <class Socket>
class deadline_socket : public std::enable_shared_from_this<deadline_socket<Socket>> {
public:
    using clock = std::chrono::steady_clock;
    using executor = boost::asio::io_context::executor_type;

    explicit deadline_socket(Socket s) : socket_(std::move(s)), timer_(socket_.get_executor()) {}

    Socket& socket() { return socket_; }

    // The connection is closed if it is still waiting `d` from now. "Now" from the coarse
    // monotonic clock (same epoch as steady_clock, a few ms behind it, several times cheaper
    // to read): a deadline of seconds does not need better, and it is read twice a request.
    void expires_after(clock::duration d) { set(coarse_now() + d); }
    void expires_never() { deadline_ = clock::time_point::max(); }
    // Ends the timer's wait (and with it the handler's hold on this).
    void cancel() {
        ++generation_;
        armed_ = false;
        timer_.cancel();
    }

private:
    static clock::time_point coarse_now() {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
    }
    void set(clock::time_point t) {
        deadline_ = t;
        if (armed_ && timer_.expiry() <= t) return;  // the armed wait comes first and re-arms
        arm();
    }
    void arm() {
        armed_ = true;
        const auto generation = ++generation_;
        timer_.expires_at(deadline_);
        timer_.async_wait([self = this->shared_from_this(), generation](boost::system::error_code ec) {
            if (generation != self->generation_) return;  // re-armed or cancelled since
            self->armed_ = false;
            if (ec || self->deadline_ == clock::time_point::max()) return;
            if (clock::now() < self->deadline_) {
                self->arm();
                return;
            }
            boost::system::error_code ignored;  // too slow: every pending operation ends now
            self->socket_.close(ignored);
        });
    }

    Socket socket_;
    boost::asio::basic_waitable_timer<clock, boost::asio::wait_traits<clock>, executor> timer_;
    clock::time_point deadline_ = clock::time_point::max();
    unsigned generation_ = 0;
    bool armed_ = false;
};

}  // namespace userapi::http
