// A request handler that throws ends only its own connection: the session's completion logs
// the exception with the request id, closes that socket, and every other connection is served.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
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

class throwing_handler final : public http::request_handler {
public:
    asio::awaitable<http::response> handle(const http::request& req, http::request_info) override {
        if (req.target() == "/boom") throw std::runtime_error("boom from the handler");
        http::response res;
        res.result(200);
        res.body() = core::shared_bytes("fine");
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

TEST(SessionFailure, AThrowingHandlerEndsOnlyItsConnection) {
    std::ostringstream log;
    log::setup_logging("info", "text", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    config::settings cfg;
    http::server_state state;
    throwing_handler h;
    std::atomic<int> ended{0};
    asio::io_context ioc;
    asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = acceptor.local_endpoint().port();
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                http::tcp_socket socket(ioc.get_executor());
                auto [ec] = co_await acceptor.async_accept(socket, asio::as_tuple(asio::use_awaitable));
                if (ec) co_return;
                http::spawn_session(std::move(socket), *core::parse_ip("127.0.0.1"), h, cfg,
                                    state, [&ended] { ++ended; });
            }
        },
        asio::detached);
    std::thread runner([&] { ioc.run(); });

    connection kept(port);  // open before the failure, served after it
    connection doomed(port);
    doomed.send(raw_request("GET", "/boom", {{"X-Request-Id", "boom-1"}}));
    EXPECT_TRUE(doomed.closed_by_peer(3s)) << "the failing connection was not closed";
    kept.send(raw_request("GET", "/fine"));
    auto r = kept.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "fine");
    EXPECT_EQ(request(port, "GET", "/fine").status, 200) << "new connections are served";
    EXPECT_TRUE(eventually([&] { return ended.load() >= 2; }));

    asio::post(ioc, [&] { acceptor.close(); });
    ioc.stop();
    runner.join();
    const auto text = log.str();
    EXPECT_NE(text.find(" error connection closed by an internal error request_id=boom-1"), std::string::npos) << text;
    EXPECT_NE(text.find("boom from the handler"), std::string::npos) << text;
}
