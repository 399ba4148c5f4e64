// The session's edges over real sockets: a request handler that throws ends only its own
// connection (the session's completion logs the exception with the request id, closes that
// socket, and every other connection is served); a response the socket cannot take at once
// arrives whole.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sstream>
#include <thread>

#include "support/http_client.hpp"
#include "support/wait.hpp"
#include "userapi/http/session.hpp"
#include "userapi/log/log.hpp"

using namespace std::chrono_literals;
using namespace userapi;
using namespace userapi::testing;
namespace asio = boost::asio;

namespace {

// 1 MiB that shows where every byte belongs: "000000 000001 ...".
const std::string& big_body() {
    static const std::string body = [] {
        std::string b;
        for (int i = 0; b.size() < (1u << 20); ++i) {
            char piece[16];
            std::snprintf(piece, sizeof piece, "%06d ", i);
            b += piece;
        }
        b.resize(1u << 20);
        return b;
    }();
    return body;
}

class throwing_handler final : public http::request_handler {
public:
    asio::awaitable<http::response> handle(const http::request& req, http::request_info) override {
        if (req.target() == "/boom") throw std::runtime_error("boom from the handler");
        http::response res;
        res.result(200);
        res.body() = core::shared_bytes(req.target() == "/big" ? big_body() : std::string("fine"));
        co_return res;
    }
    asio::awaitable<http::response> reject(const http::request&, unsigned status, std::string_view,
                                           http::request_info) override {
        http::response res;
        res.result(status);
        co_return res;
    }
};

}  // namespace

// Serves connections on 127.0.0.1 with `h` on a thread of its own until destroyed; each
// accepted socket's send buffer is made small, so a large response is sent in pieces.
struct session_server {
    explicit session_server(http::request_handler& h, int send_buffer = 0) {
        asio::co_spawn(
            ioc,
            [this, &h, send_buffer]() -> asio::awaitable<void> {
                for (;;) {
                    http::tcp_socket socket(ioc.get_executor());
                    auto [ec] = co_await acceptor.async_accept(socket, asio::as_tuple(asio::use_awaitable));
                    if (ec) co_return;
                    if (send_buffer) socket.set_option(asio::socket_base::send_buffer_size(send_buffer), ec);
                    http::spawn_session(std::move(socket), *core::parse_ip("127.0.0.1"), h, cfg, state,
                                        [this] { ++ended; });
                }
            },
            asio::detached);
        runner = std::thread([this] { ioc.run(); });
    }
    ~session_server() {
        asio::post(ioc, [this] { acceptor.close(); });
        ioc.stop();
        runner.join();
    }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }

    config::settings cfg;
    http::server_state state;
    std::atomic<int> ended{0};
    asio::io_context ioc;
    asio::ip::tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    std::thread runner;
};

TEST(SessionWrites, ResponsesLargerThanTheSocketBufferArriveWhole) {
    throwing_handler h;
    session_server srv(h, 4096);
    connection c(srv.port());
    ASSERT_TRUE(c.send(raw_request("GET", "/big") + raw_request("GET", "/fine") + raw_request("GET", "/big")));
    for (const char* want : {"big", "fine", "big"}) {
        const auto r = c.read_response();
        ASSERT_EQ(r.status, 200);
        if (std::string_view(want) == "big") {
            ASSERT_EQ(r.body.size(), big_body().size());
            EXPECT_TRUE(r.body == big_body()) << "the body differs at byte "
                                              << std::mismatch(r.body.begin(), r.body.end(), big_body().begin()).first -
                                                     r.body.begin();
        } else {
            EXPECT_EQ(r.body, "fine");
        }
    }
}

TEST(SessionFailure, AThrowingHandlerEndsOnlyItsConnection) {
    std::ostringstream log;
    log::setup_logging("info", "text", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    throwing_handler h;
    std::string text;
    {
        session_server srv(h);
        const auto port = srv.port();
        connection kept(port);  // open before the failure, served after it
        connection doomed(port);
        doomed.send(raw_request("GET", "/boom", {{"X-Request-Id", "boom-1"}}));
        EXPECT_TRUE(doomed.closed_by_peer(3s)) << "the failing connection was not closed";
        kept.send(raw_request("GET", "/fine"));
        auto r = kept.read_response();
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "fine");
        EXPECT_EQ(request(port, "GET", "/fine").status, 200) << "new connections are served";
        EXPECT_TRUE(eventually([&] { return srv.ended.load() >= 2; }));
    }
    text = log.str();
    EXPECT_NE(text.find(" error connection closed by an internal error request_id=boom-1"), std::string::npos) << text;
    EXPECT_NE(text.find("boom from the handler"), std::string::npos) << text;
}
