// One client connection: read a request, answer it, repeat while keep-alive holds.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "userapi/config/config.hpp"
#include "userapi/http/handler.hpp"

namespace userapi::http {

// Runs on the stream's executor (a strand of its own); ends when the connection closes.
// Requests on one connection are answered strictly in order, so pipelining needs no queue.
boost::asio::awaitable<void> run_session(boost::beast::tcp_stream stream, handler& h, const config::settings& cfg,
                                         server_state& state);

}  // namespace userapi::http
