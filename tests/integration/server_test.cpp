// The real server over real sockets: every endpoint, coalescing, rate limiting, keep-alive.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "support/http_client.hpp"
#include "support/test_repository.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using namespace userapi;
using namespace userapi::testing;
using nlohmann::json;

namespace {

// A repository whose reads wait until the test opens the gate.
struct gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    void wait() {
        std::unique_lock lock(mu);
        cv.wait_for(lock, 20s, [this] { return open; });
    }
    void release() {
        {
            std::lock_guard lock(mu);
            open = true;
        }
        cv.notify_all();
    }
};

}  // namespace

TEST(Server, EveryEndpoint) {
    test_server srv;
    const auto port = srv.port();

    auto miss = request(port, "GET", "/users/1");
    EXPECT_EQ(miss.status, 200);
    EXPECT_EQ(miss.header("Content-Type"), "application/json");
    EXPECT_EQ(miss.header("X-Cache"), "MISS");
    EXPECT_EQ(json::parse(miss.body), json::parse(R"({"id":1,"name":"User 1","email":"user1@example.com"})"));
    EXPECT_EQ(request(port, "GET", "/users/1").header("X-Cache"), "HIT");
    EXPECT_EQ(request(port, "GET", "/users/51").status, 404);
    EXPECT_EQ(request(port, "GET", "/users/abc").status, 400);

    auto created = request(port, "POST", "/users", {{"Content-Type", "application/json"}},
                           R"({"name":"Grace Hopper","email":"grace@example.org"})");
    EXPECT_EQ(created.status, 201);
    EXPECT_EQ(created.header("Location"), "/users/51");
    EXPECT_EQ(request(port, "GET", "/users/51").header("X-Cache"), "HIT");

    auto head = request(port, "HEAD", "/users/1");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length"), std::to_string(miss.body.size()));

    auto status = cache_status(port);
    EXPECT_EQ(status["db"]["writes"], 1);
    EXPECT_EQ(status["cache"]["size"], 2);

    auto cleared = request(port, "DELETE", "/cache");
    EXPECT_EQ(cleared.status, 200);
    EXPECT_EQ(json::parse(cleared.body)["cleared"], 2);

    EXPECT_EQ(json::parse(request(port, "GET", "/healthz").body)["status"], "ok");
    auto metrics = request(port, "GET", "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("http_requests_total"), std::string::npos);
    auto wrong = request(port, "PUT", "/users/1");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(wrong.header("Allow"), "GET, HEAD, PATCH, DELETE");
    EXPECT_EQ(wrong.header("Content-Type"), "application/problem+json");
    EXPECT_FALSE(wrong.header("X-Request-Id").empty());
}

// 100 concurrent cold GETs for one id: the read is held until all 100 have joined, so the
// outcome is deterministic: one read, one MISS, 99 COALESCED, the same user for everyone.
TEST(Server, HundredConcurrentColdGetsOneRead) {
    auto repo = std::make_unique<counting_repository>();
    auto* counter = repo.get();
    gate g;
    repo->on_find = [&g](std::int64_t) { g.wait(); };
    auto cfg = test_settings();
    cfg.max_connections = 1000;
    test_server srv(cfg, std::move(repo));
    const auto port = srv.port();

    std::vector<std::unique_ptr<connection>> conns;
    for (int i = 0; i < 100; ++i) conns.push_back(std::make_unique<connection>(port));
    for (auto& c : conns) ASSERT_TRUE(c->send(raw_request("GET", "/users/7")));
    ASSERT_TRUE(eventually([&] { return cache_status(port)["coalescing"]["coalesced_requests"] == 99; }))
        << cache_status(port).dump();
    g.release();
    std::map<std::string, int> xcache;
    for (auto& c : conns) {
        auto r = c->read_response();
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(json::parse(r.body)["id"], 7);
        ++xcache[r.header("X-Cache")];
    }
    EXPECT_EQ(xcache, (std::map<std::string, int>{{"COALESCED", 99}, {"MISS", 1}}));
    EXPECT_EQ(counter->finds, 1);
    auto s = cache_status(port);
    EXPECT_EQ(s["db"]["reads"], 1);
    EXPECT_EQ(s["cache"]["misses"], 100);
    EXPECT_EQ(s["coalescing"]["inflight"], 0);
    EXPECT_EQ(request(port, "GET", "/users/7").header("X-Cache"), "HIT");
}

// Defaults (burst 5, 10/min): the sixth quick request is 429 with the contract's headers.
TEST(Server, SixthQuickRequestIs429) {
    auto cfg = test_settings();
    cfg.rate_limit_enabled = true;
    test_server srv(cfg);
    for (int i = 0; i < 5; ++i) {
        auto r = request(srv.port(), "GET", "/users/1");
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("RateLimit-Remaining"), std::to_string(4 - i));
    }
    auto r = request(srv.port(), "GET", "/users/1");
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(r.header("Retry-After"), "6");
    EXPECT_EQ(r.header("RateLimit-Limit"), "5");
    EXPECT_EQ(r.header("RateLimit-Remaining"), "0");
    EXPECT_EQ(r.header("RateLimit-Reset"), "30");
    EXPECT_EQ(r.header("RateLimit-Policy"), "\"default\";q=5;w=30");
    EXPECT_EQ(r.header("RateLimit"), "\"default\";r=0;t=6");
    EXPECT_EQ(request(srv.port(), "GET", "/healthz").status, 200) << "health is never limited";
    EXPECT_EQ(request(srv.port(), "GET", "/cache-status").status, 429) << "every limited route shares the bucket";
}

// A cached hit on a keep-alive HTTP/1.1 connection is written straight from the cache's bytes;
// an HTTP/1.0 one takes the ordinary path. Both must say the same thing, header for header.
TEST(Server, CachedHitRenderedAtOnceMatchesTheOrdinaryAnswer) {
    auto cfg = test_settings();
    cfg.rate_limit_enabled = true;
    cfg.rate_limit_capacity = 100;
    test_server srv(cfg);
    ASSERT_EQ(request(srv.port(), "GET", "/users/3").header("X-Cache"), "MISS");
    connection c(srv.port());
    ASSERT_TRUE(c.send(raw_request("GET", "/users/3") + raw_request("HEAD", "/users/3")));  // pipelined
    const auto fast = c.read_response();
    const auto fast_head = c.read_response(true);
    connection old(srv.port());
    ASSERT_TRUE(old.send(raw_request("GET", "/users/3", {}, "", "HTTP/1.0")));
    const auto ordinary = old.read_response();
    const auto fields = [](const http_response& r) {
        std::map<std::string, std::string> m;  // what may differ between two requests left out
        for (auto [name, value] : r.headers) {
            for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (name == "date" || name == "x-request-id" || name == "connection") continue;
            if (name == "ratelimit-remaining" || name == "ratelimit-reset" || name == "ratelimit") value = "?";
            m.emplace(name, value);
        }
        return m;
    };
    EXPECT_EQ(fast.status, 200);
    EXPECT_EQ(fast.header("X-Cache"), "HIT");
    EXPECT_EQ(fast.header("ETag"), "\"3-1\"");
    EXPECT_EQ(fast.header("RateLimit-Remaining"), "98");
    EXPECT_EQ(fast_head.header("RateLimit-Remaining"), "97");
    EXPECT_EQ(ordinary.header("RateLimit-Remaining"), "96");
    EXPECT_FALSE(fast.header("Date").empty());
    EXPECT_EQ(fast.body, ordinary.body);
    EXPECT_TRUE(fast_head.body.empty());
    EXPECT_EQ(fields(fast), fields(ordinary));
    EXPECT_EQ(fields(fast_head), fields(ordinary));
    EXPECT_EQ(cache_status(srv.port())["cache"]["hits"], 3);
}

// Keep-alive is the default: 100 requests on one connection.
TEST(Server, KeepAliveByDefault) {
    test_server srv;
    connection c(srv.port());
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(c.send(raw_request("GET", i % 2 ? "/users/2" : "/healthz")));
        auto r = c.read_response();
        ASSERT_EQ(r.status, 200) << "request " << i;
        EXPECT_NE(r.header("Connection"), "close");
    }
}

// Pipelined requests are answered in order, a slow cold read before a fast one included,
// and a pipelined HEAD has no body to shift the next response.
TEST(Server, PipelinedRequestsInOrder) {
    auto cfg = test_settings();
    cfg.db_latency_ms = 100;
    test_server srv(cfg);
    connection c(srv.port());
    ASSERT_TRUE(c.send(raw_request("GET", "/users/12") + raw_request("GET", "/healthz") +
                       raw_request("HEAD", "/users/13") + raw_request("GET", "/users/13")));
    EXPECT_EQ(json::parse(c.read_response().body)["id"], 12);
    EXPECT_EQ(json::parse(c.read_response().body)["status"], "ok");
    auto head = c.read_response(true);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(json::parse(c.read_response().body)["id"], 13);
}

// Connection: close and HTTP/1.0 get their response, then the server closes.
TEST(Server, ConnectionCloseAndHttp10) {
    test_server srv;
    {
        connection c(srv.port());
        c.send(raw_request("GET", "/users/3", {{"Connection", "close"}}));
        auto r = c.read_response();
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("Connection"), "close");
        EXPECT_TRUE(c.closed_by_peer(3s));
    }
    {
        connection c(srv.port());
        c.send(raw_request("GET", "/users/3", {}, "", "HTTP/1.0"));
        auto r = c.read_response();
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.version, "HTTP/1.0");
        EXPECT_TRUE(c.closed_by_peer(3s));
    }
    {
        connection c(srv.port());
        c.send(raw_request("GET", "/healthz", {{"Connection", "keep-alive"}}, "", "HTTP/1.0"));
        EXPECT_EQ(c.read_response().header("Connection"), "keep-alive");
        c.send(raw_request("GET", "/healthz", {{"Connection", "keep-alive"}}, "", "HTTP/1.0"));
        EXPECT_EQ(c.read_response().status, 200) << "HTTP/1.0 keep-alive, when asked for, holds";
    }
}

// A failing database answers 503 problem+json with Retry-After, and the next request tries again.
TEST(Server, FailedReadIs503AndNotRemembered) {
    auto repo = std::make_unique<counting_repository>();
    auto* r = repo.get();
    test_server srv(test_settings(), std::move(repo));
    r->fail_finds = true;
    auto failed = request(srv.port(), "GET", "/users/4");
    EXPECT_EQ(failed.status, 503);
    EXPECT_EQ(failed.header("Content-Type"), "application/problem+json");
    EXPECT_FALSE(failed.header("Retry-After").empty());
    r->fail_finds = false;
    EXPECT_EQ(request(srv.port(), "GET", "/users/4").status, 200);
}

// Every line a request causes carries its X-Request-Id: the database error and the access
// line, in text and in JSON.
TEST(Server, EveryLogLineOfARequestCarriesItsRequestId) {
    for (const std::string format : {"text", "json"}) {
        std::ostringstream out;
        {
            auto repo = std::make_unique<counting_repository>();
            repo->fail_finds = true;
            auto cfg = test_settings();
            cfg.log_level = "info";
            cfg.log_format = format;
            test_server srv(cfg, std::move(repo), std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
            auto r = request(srv.port(), "GET", "/users/4", {{"X-Request-Id", "trace-4711"}});
            ASSERT_EQ(r.status, 503);
            EXPECT_EQ(r.header("X-Request-Id"), "trace-4711");
            spdlog::default_logger()->flush();
        }
        std::istringstream in(out.str());
        int with_id = 0;
        for (std::string line; std::getline(in, line);) {
            if (line.find("4711") == std::string::npos) continue;
            ++with_id;
            if (format == "json")
                EXPECT_EQ(json::parse(line)["request_id"], "trace-4711") << line;
            else
                EXPECT_NE(line.find("request_id=trace-4711"), std::string::npos) << line;
        }
        EXPECT_EQ(with_id, 2) << "the database error and the access line:\n" << out.str();
        std::istringstream all(out.str());
        for (std::string line; std::getline(all, line);) {
            if (line.find("database error") != std::string::npos || line.find("access") != std::string::npos) {
                EXPECT_NE(line.find("trace-4711"), std::string::npos) << "a request's line without its id: " << line;
            }
        }
    }
    log::setup_logging("warn", "text");
}

// A full DB queue: 503 with Retry-After at once; nothing accepted is dropped.
TEST(Server, QueueFullIs503) {
    auto cfg = test_settings();
    cfg.db_latency_ms = 300;
    cfg.db_queue_limit = 1;
    test_server srv(cfg);
    std::vector<std::unique_ptr<connection>> conns;
    for (int id = 20; id < 26; ++id) {
        conns.push_back(std::make_unique<connection>(srv.port()));
        conns.back()->send(raw_request("GET", "/users/" + std::to_string(id)));
    }
    int ok = 0, refused = 0;
    for (auto& c : conns) {
        auto r = c->read_response();
        if (r.status == 200) ++ok;
        if (r.status == 503) {
            ++refused;
            EXPECT_EQ(r.header("Retry-After"), "1");
        }
    }
    EXPECT_EQ(ok + refused, 6);
    EXPECT_EQ(ok, 2) << "one running plus one waiting";
    EXPECT_EQ(cache_status(srv.port())["db"]["reads"], 2);
}

// A DB wait longer than the request timeout answers 504.
TEST(Server, SlowDatabaseIs504) {
    auto cfg = test_settings();
    cfg.db_latency_ms = 2000;
    cfg.request_timeout_ms = 100;
    test_server srv(cfg);
    auto r = request(srv.port(), "GET", "/users/1");
    EXPECT_EQ(r.status, 504);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
}

// Two simultaneous POSTs with one email: exactly one 201 and one 409.
TEST(Server, ConcurrentDuplicateEmailOneWins) {
    test_server srv;
    for (int round = 0; round < 5; ++round) {
        const std::string body = R"({"name":"Twin","email":"twin)" + std::to_string(round) + R"(@example.org"})";
        connection a(srv.port()), b(srv.port());
        const auto req = raw_request("POST", "/users", {{"Content-Type", "application/json"}}, body);
        ASSERT_TRUE(a.send(req));
        ASSERT_TRUE(b.send(req));
        std::multiset<int> statuses{a.read_response().status, b.read_response().status};
        EXPECT_EQ(statuses, (std::multiset<int>{201, 409}));
    }
}
