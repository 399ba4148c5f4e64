// Overload and hostile clients: a full queue, timed-out requests, too many connections,
// slow and non-reading clients, and the drain.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http_client.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using namespace userapi::testing;
using nlohmann::json;

namespace {

double metric(std::uint16_t port, const std::string& name) {
    const auto body = request(port, "GET", "/metrics").body;
    const auto at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(body.substr(at + name.size() + 2));
}

// Median time of `n` cache hits on one keep-alive connection.
std::chrono::microseconds median_hit(std::uint16_t port, int n) {
    connection c(port);
    std::vector<std::chrono::microseconds> t;
    for (int i = 0; i < n; ++i) {
        const auto start = std::chrono::steady_clock::now();
        c.send(raw_request("GET", "/users/1"));
        EXPECT_EQ(c.read_response().status, 200);
        t.push_back(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace

// A request that waited past --request-timeout-ms answers 504, and its queued read is dropped
// unrun, freeing its slot: only the running read costs a database operation.
TEST(Overload, TimedOutRequestsReleaseTheirSlot) {
    auto cfg = test_settings();
    cfg.db_latency_ms = 400;
    cfg.request_timeout_ms = 150;
    cfg.db_queue_limit = 1;
    test_server srv(cfg);
    connection first(srv.port()), second(srv.port());
    first.send(raw_request("GET", "/users/1"));
    ASSERT_TRUE(eventually([&] { return cache_status(srv.port())["db"]["queue_depth"] == 1; }));
    second.send(raw_request("GET", "/users/2"));
    EXPECT_EQ(first.read_response().status, 504);
    EXPECT_EQ(second.read_response().status, 504);
    ASSERT_TRUE(eventually([&] { return cache_status(srv.port())["db"]["queue_depth"] == 0; }));
    EXPECT_EQ(cache_status(srv.port())["db"]["reads"], 1)
        << "the read still waiting at its deadline must not run (the one holding the slot does)";
    EXPECT_EQ(request(srv.port(), "GET", "/users/1").status, 200) << "the running read filled the cache";
}

// With the DB queue full, cache hits are still served.
TEST(Overload, HitsServedWhileQueueIsFull) {
    auto cfg = test_settings();
    cfg.db_latency_ms = 300;
    cfg.db_queue_limit = 0;
    test_server srv(cfg);
    ASSERT_EQ(request(srv.port(), "GET", "/users/1").status, 200);
    connection busy(srv.port());
    busy.send(raw_request("GET", "/users/2"));
    ASSERT_TRUE(eventually([&] { return cache_status(srv.port())["db"]["queue_depth"] == 1; }));
    auto refused = request(srv.port(), "GET", "/users/3");
    EXPECT_EQ(refused.status, 503);
    EXPECT_EQ(refused.header("Retry-After"), "1");
    auto hit = request(srv.port(), "GET", "/users/1");
    EXPECT_EQ(hit.status, 200);
    EXPECT_EQ(hit.header("X-Cache"), "HIT");
    EXPECT_EQ(busy.read_response().status, 200);
}

// Beyond --max-connections a new connection gets a 503 and is closed at once.
TEST(Overload, ConnectionsBeyondTheLimitAreRefused) {
    auto cfg = test_settings();
    cfg.max_connections = 3;
    test_server srv(cfg);
    std::vector<std::unique_ptr<connection>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<connection>(srv.port()));
        held.back()->send(raw_request("GET", "/healthz"));
        ASSERT_EQ(held.back()->read_response().status, 200);
    }
    connection extra(srv.port());
    auto r = extra.read_response();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_TRUE(extra.closed_by_peer(2s));
    held.pop_back();
    ASSERT_TRUE(eventually([&] {
        connection c(srv.port());
        c.send(raw_request("GET", "/healthz"));
        return c.read_response().status == 200;
    }));
}

// 500 clients sending their headers a byte at a time neither delay an honest client's cache
// hit noticeably nor stay connected past the header timeout.
TEST(Overload, SlowClientsDoNotDelayOthers) {
    auto cfg = test_settings();
    cfg.header_timeout_ms = 1500;
    cfg.max_connections_per_client = 1000;  // the 500 clients all come from 127.0.0.1 here
    test_server srv(cfg);
    const auto port = srv.port();
    ASSERT_EQ(request(port, "GET", "/users/1").status, 200);
    const auto baseline = median_hit(port, 200);

    const std::string head = "GET /users/1 HTTP/1.1\r\nHost: x\r\n";
    std::vector<std::unique_ptr<connection>> slow;
    for (int i = 0; i < 500; ++i) slow.push_back(std::make_unique<connection>(port, 5s));
    for (std::size_t k = 0; k < 5; ++k)
        for (auto& c : slow) c->send(head.substr(k, 1));  // one byte each, round after round
    ASSERT_TRUE(eventually([&] { return metric(port, "userapi_open_connections") >= 500; }));
    const auto loaded = median_hit(port, 200);
    EXPECT_LT(loaded - baseline, 5ms) << "baseline " << baseline.count() << " us, with 500 slow clients "
                                      << loaded.count() << " us";
    for (auto& c : slow) c->send(head.substr(5, 1));
    ASSERT_TRUE(eventually([&] { return metric(port, "userapi_open_connections") <= 1; }, 10s))
        << "slow clients still connected after the header timeout";
}

// A client that sends requests but never reads the answers is dropped once its socket
// stays full for the idle timeout.
TEST(Overload, NonReadingClientIsDropped) {
    auto cfg = test_settings();
    cfg.idle_timeout_ms = 500;
    test_server srv(cfg);
    const auto port = srv.port();
    connection hog(port, 2s);
    std::string batch;
    for (int i = 0; i < 200; ++i) batch += raw_request("GET", "/metrics");
    for (int i = 0; i < 50 && hog.send(batch); ++i) {
    }
    ASSERT_TRUE(eventually([&] { return metric(port, "userapi_open_connections") <= 1; }, 10s))
        << "the non-reading client is still connected";
}

// Stop (SIGTERM's path): /healthz says draining on an open connection, the request in flight
// completes, and its connection is closed after the response.
TEST(Overload, DrainFinishesInFlightRequests) {
    auto cfg = test_settings();
    cfg.db_latency_ms = 500;
    auto srv = std::make_unique<test_server>(cfg);
    const auto port = srv->port();
    connection keep(port), slow(port);
    keep.send(raw_request("GET", "/healthz"));
    ASSERT_EQ(keep.read_response().status, 200);
    slow.send(raw_request("GET", "/users/1"));
    ASSERT_TRUE(eventually([&] { return cache_status(port)["db"]["queue_depth"] == 1; }));
    srv->get().stop();
    userapi::testing::http_response h;
    ASSERT_TRUE(eventually(
        [&] {  // stop() only posts the drain: ask until it has begun
            keep.send(raw_request("GET", "/healthz"));
            h = keep.read_response();
            return h.status == 503;
        },
        3s));
    EXPECT_EQ(json::parse(h.body)["status"], "draining");
    EXPECT_EQ(h.header("Connection"), "close");
    auto r = slow.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Connection"), "close");
    srv.reset();  // waits for the drain to finish
}
