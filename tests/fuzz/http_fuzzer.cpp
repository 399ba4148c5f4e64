// Fuzz target: raw bytes from a client, through the server's own session code (Beast parser,
// framing checks, router, handler, user service, DB queue), over a Unix socket pair.
// Whatever arrives, the server must answer with well-formed responses or close, and never
// crash, leak or hit undefined behaviour.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "userapi/http/handler.hpp"
#include "userapi/http/session.hpp"
#include "userapi/log/log.hpp"
#include "userapi/store/memory_user_repository.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace userapi;

// One server, kept across inputs like a real one (state such as created users and buckets
// accumulates, as it would under real traffic).
struct harness {
    harness() {
        log::setup_logging("off", "text");
        // The server's own limits (body 16 KiB, 8 KiB sections): the fuzzer must reach past them.
        cfg.header_timeout_ms = 1000;
        cfg.idle_timeout_ms = 1000;
        cfg.admin_token = "fuzz-token";
        service::seed_users(repo, 20);
    }
    config::settings cfg;
    core::manual_clock clock;
    asio::io_context ioc;
    store::memory_user_repository repo;
    service::user_cache cache{clock, 64, 60s};
    service::db_queue db{ioc, clock, 0ms, 16};
    service::user_service users{cache, db, repo, clock, 1s};
    limit::local_rate_limiter limiter{clock, {5, 1.0}, 64};
    core::client_resolver resolver{{*core::parse_cidr("127.0.0.0/8")}, 64};  // so X-Forwarded-For is parsed
    http::metrics stats;
    http::server_state state;
    const std::string name = "fuzz";
    http::handler handler{cfg, users, &limiter, resolver, stats, state, {name, "sqlite", "local", {}}};
};

asio::awaitable<void> client(asio::local::stream_protocol::socket& s, const std::string& input, std::string& output) {
    co_await asio::async_write(s, asio::buffer(input),
                               asio::as_tuple(asio::use_awaitable));  // a refusal may close early
    boost::system::error_code ec;
    s.shutdown(asio::socket_base::shutdown_send, ec);
    char buf[8192];
    for (;;) {
        auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        output.append(buf, n);
        if (rec) break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static harness* h = new harness;  // lives for the whole run, like a server
    h->clock.advance(1s);
    asio::local::stream_protocol::socket client_end(h->ioc);
    http::local_socket server_end(h->ioc.get_executor());
    asio::local::connect_pair(client_end, server_end);
    const std::string input(reinterpret_cast<const char*>(data), size);
    std::string output;
    http::spawn_session(std::move(server_end), *core::parse_ip("127.0.0.1"), h->handler, h->cfg, h->state);
    asio::co_spawn(h->ioc, client(client_end, input, output), asio::detached);
    h->ioc.restart();
    h->ioc.run();
    // Whatever was sent back is a sequence of HTTP responses, and no internal text leaks
    // (a marker the client itself sent may be echoed, in a path say).
    if (!output.empty() && output.compare(0, 7, "HTTP/1.") != 0) std::abort();
    for (const char* marker : {"exception", "std::", "what()", "boost::"})
        if (output.find(marker) != std::string::npos && input.find(marker) == std::string::npos) std::abort();
    return 0;
}
