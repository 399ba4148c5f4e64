// One client connection: read a request, answer it, repeat while keep-alive holds.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "userapi/config/config.hpp"
#include "userapi/core/ip_address.hpp"
#include "userapi/http/request_handler.hpp"

namespace userapi::http {

// Sockets of an io_context, by its concrete executor type. A connection over a Unix socket
// pair runs the same session code without a network, for the fuzzer and tests.
using tcp_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;
using local_socket =
    boost::asio::basic_stream_socket<boost::asio::local::stream_protocol, boost::asio::io_context::executor_type>;

// Starts a session on the socket's executor; it ends when the connection closes. Requests on
// one connection are answered strictly in order, so pipelining needs no queue.
// Whatever happens inside, only this connection ends: an exception that leaves the session
// is logged at error level with the id of the request being served, the socket is closed,
// and `on_end` runs (it always runs once, on the stream's executor).
// Instantiated for tcp_socket and local_socket.
template <class Socket>
void spawn_session(Socket socket, core::ip_address peer, request_handler& h, const config::settings& cfg,
                   server_state& state, std::function<void()> on_end = {});

}  // namespace userapi::http
