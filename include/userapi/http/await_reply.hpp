// Waiting for the user service from a coroutine, without blocking a thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace userapi::http {

// Runs `start(callback)` and waits for the callback or for `timeout`. The callback may run on
// any thread: it posts back to this coroutine's executor (its connection's I/O thread, which
// owns `reply`). nullopt means the wait timed out.
template <class Reply, class Start>
boost::asio::awaitable<std::optional<Reply>> await_reply(Start start, std::chrono::milliseconds timeout) {
    namespace asio = boost::asio;
    struct waiting {
        explicit waiting(asio::any_io_executor ex) : timer(std::move(ex)) {}
        asio::steady_timer timer;    // doubles as the wake-up signal
        std::optional<Reply> reply;  // owned by the timer's executor
    };
    auto w = std::make_shared<waiting>(co_await asio::this_coro::executor);
    w->timer.expires_after(timeout);
    start([w](const Reply& r) {
        asio::post(w->timer.get_executor(), [w, r] {
            w->reply = r;
            w->timer.cancel();
        });
    });
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return std::move(w->reply);
}

}  // namespace userapi::http
