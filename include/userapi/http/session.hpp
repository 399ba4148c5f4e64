// One client connection: read a request, answer it, repeat while keep-alive holds.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "userapi/config/config.hpp"
#include "userapi/core/ip_address.hpp"
#include "userapi/http/handler.hpp"

namespace userapi::http {

// A connection over a Unix socket pair: the same session code without a network, for the
// fuzzer and tests.
using local_stream = boost::beast::basic_stream<boost::asio::local::stream_protocol>;

// Runs on the stream's executor (a strand of its own); ends when the connection closes.
// Requests on one connection are answered strictly in order, so pipelining needs no queue.
// Instantiated for boost::beast::tcp_stream and local_stream.
template <class Stream>
boost::asio::awaitable<void> run_session(Stream stream, core::ip_address peer, handler& h, const config::settings& cfg,
                                         server_state& state);

}  // namespace userapi::http
