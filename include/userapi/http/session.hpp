// One client connection: read a request, answer it, repeat while keep-alive holds.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "userapi/config/config.hpp"
#include "userapi/core/ip_address.hpp"
#include "userapi/http/request_handler.hpp"

namespace userapi::http {

// A connection over a Unix socket pair: the same session code without a network, for the
// fuzzer and tests.
using local_stream = boost::beast::basic_stream<boost::asio::local::stream_protocol>;

// Starts a session on the stream's executor; it ends when the connection closes. Requests on
// one connection are answered strictly in order, so pipelining needs no queue.
// Whatever happens inside, only this connection ends: an exception that leaves the session
// is logged at error level with the id of the request being served, the socket is closed,
// and `on_end` runs (it always runs once, on the stream's executor).
// Instantiated for boost::beast::tcp_stream and local_stream.
template <class Stream>
void spawn_session(Stream stream, core::ip_address peer, request_handler& h, const config::settings& cfg,
                   server_state& state, std::function<void()> on_end = {});

}  // namespace userapi::http
