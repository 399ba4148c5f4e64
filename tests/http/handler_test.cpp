// The handler without sockets: a request in, a response out, on one io_context the test runs.
#include "userapi/http/handler.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "support/test_repository.hpp"

using namespace std::chrono_literals;
using namespace userapi;
namespace bhttp = boost::beast::http;

namespace {

class Handler : public ::testing::Test {
protected:
    Handler() { service::seed_users(repo, 10); }

    http::response call(bhttp::verb method, std::string target, std::string body = "",
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
        http::request req{method, target, 11};
        for (auto& [k, v] : headers) req.set(k, v);
        req.body() = std::move(body);
        req.prepare_payload();
        std::optional<http::response> out;
        const auto id = http::request_id(req);
        boost::asio::co_spawn(ioc, h->handle(req, http::request_info{peer, id}),
                              [&](std::exception_ptr e, http::response r) {
                                  ASSERT_FALSE(e);
                                  out = std::move(r);
                              });
        ioc.restart();
        ioc.run();
        EXPECT_TRUE(out);
        return out ? std::move(*out) : http::response{};
    }
    http::response get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {}) {
        return call(bhttp::verb::get, std::move(target), "", std::move(headers));
    }
    http::response post_user(std::string body, std::string content_type = "application/json") {
        return call(bhttp::verb::post, "/users", std::move(body), {{"Content-Type", content_type}});
    }
    static nlohmann::json json(const http::response& r) { return nlohmann::json::parse(r.body().view()); }
    void expect_problem(const http::response& r, unsigned status) {
        EXPECT_EQ(r.result_int(), status) << r.body().view();
        EXPECT_EQ(r[bhttp::field::content_type], "application/problem+json");
        auto p = json(r);
        EXPECT_EQ(p["status"], status);
        EXPECT_EQ(p["type"], "about:blank");
        EXPECT_TRUE(p["title"].is_string());
        EXPECT_TRUE(p["detail"].is_string());
    }

    // Set before the handler below is made from it: it reads the admin token once.
    config::settings cfg = [] {
        config::settings s;
        s.admin_token = "s3cret";
        return s;
    }();
    core::manual_clock clock;
    boost::asio::io_context ioc;
    userapi::testing::counting_repository repo;
    service::user_cache cache{clock, 100, 60s};
    service::db_queue queue{ioc, clock, 0ms, 100};
    service::user_service users{cache, queue, repo, clock};
    limit::local_rate_limiter generous{clock, {1000, 1000}, 1000};
    limit::local_rate_limiter strict{clock, {5, 10.0 / 60}, 1000};  // the contract's defaults
    core::client_resolver resolver{{}, 64};
    http::metrics stats;
    http::server_state state;
    const std::string name = "test-instance";
    http::instance_info instance{name, "sqlite", "local", {}};
    std::unique_ptr<http::handler> h =
        std::make_unique<http::handler>(cfg, users, &generous, resolver, stats, state, instance);
    core::ip_address peer = *core::parse_ip("127.0.0.1");
};

}  // namespace

TEST_F(Handler, GetUserMissThenHit) {
    auto r1 = get("/users/1");
    EXPECT_EQ(r1.result_int(), 200);
    EXPECT_EQ(r1["X-Cache"], "MISS");
    EXPECT_EQ(json(r1)["email"], "user1@example.com");
    auto r2 = get("/users/1");
    EXPECT_EQ(r2["X-Cache"], "HIT");
    EXPECT_EQ(r2.body().view(), r1.body().view());
}

TEST_F(Handler, UnknownUserIs404) { expect_problem(get("/users/999"), 404); }

TEST_F(Handler, BadIdIs400) {
    for (auto id : {"0", "-1", "abc", "01", "1.5", "99999999999999999999", ""})
        expect_problem(get(std::string("/users/") + id), 400);
}

TEST_F(Handler, UnknownPathIs404) { expect_problem(get("/nope"), 404); }

// A known path with another method: 405 with Allow listing what it serves.
TEST_F(Handler, WrongMethodIs405WithAllow) {
    auto r = call(bhttp::verb::put, "/users/1");
    expect_problem(r, 405);
    EXPECT_EQ(r[bhttp::field::allow], "GET, HEAD, PATCH, DELETE");
    auto r2 = call(bhttp::verb::get, "/cache");
    expect_problem(r2, 405);
    EXPECT_EQ(r2[bhttp::field::allow], "DELETE");
}

// HEAD is answered like GET (the session leaves out the body).
TEST_F(Handler, HeadLikeGet) {
    auto r = call(bhttp::verb::head, "/users/2");
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r["X-Cache"], "MISS");
    EXPECT_EQ(r.body().view(), get("/users/2").body().view());
}

TEST_F(Handler, RequestIdEchoedOrGenerated) {
    EXPECT_EQ(get("/healthz", {{"X-Request-Id", "abc-123"}})["X-Request-Id"], "abc-123");
    const auto a = std::string(get("/healthz")["X-Request-Id"]);
    const auto b = std::string(get("/healthz")["X-Request-Id"]);
    EXPECT_FALSE(a.empty());
    EXPECT_NE(a, b);
    EXPECT_NE(get("/healthz", {{"X-Request-Id", std::string(129, 'r')}})["X-Request-Id"], std::string(129, 'r'));
}

// The sixth quick request is 429 with the contract's headers; health is never limited.
TEST_F(Handler, RateLimitHeadersAnd429) {
    h = std::make_unique<http::handler>(cfg, users, &strict, resolver, stats, state, instance);
    for (int i = 0; i < 5; ++i) {
        auto r = get("/users/3");
        EXPECT_EQ(r.result_int(), 200);
        EXPECT_EQ(r["RateLimit-Limit"], "5");
        EXPECT_EQ(r["RateLimit-Remaining"], std::to_string(4 - i));
        EXPECT_EQ(r["RateLimit-Policy"], "\"default\";q=5;w=30");
    }
    auto r = get("/users/3");
    expect_problem(r, 429);
    EXPECT_EQ(r["Retry-After"], "6");
    EXPECT_EQ(r["RateLimit-Remaining"], "0");
    EXPECT_EQ(r["RateLimit-Reset"], "30");
    EXPECT_EQ(r["RateLimit"], "\"default\";r=0;t=6");
    EXPECT_EQ(get("/healthz").result_int(), 200);
    EXPECT_TRUE(get("/healthz")["RateLimit-Limit"].empty());
    EXPECT_EQ(stats.rate_limited_total(), 1u);
    clock.advance(6s);
    EXPECT_EQ(get("/users/3").result_int(), 200);
}

TEST_F(Handler, CreateUser201WithLocation) {
    auto r = post_user(R"({"name":"Ada","email":"ada@example.org"})");
    EXPECT_EQ(r.result_int(), 201);
    EXPECT_EQ(r[bhttp::field::location], "/users/11");
    EXPECT_EQ(json(r)["id"], 11);
    EXPECT_EQ(get("/users/11")["X-Cache"], "HIT");
}

TEST_F(Handler, CreateUserErrors) {
    expect_problem(post_user(R"({"name":"A","email":"a@example.org"})", "text/plain"), 415);
    expect_problem(call(bhttp::verb::post, "/users", R"({"name":"A","email":"a@example.org"})"), 415);
    EXPECT_EQ(post_user(R"({"name":"A","email":"a@example.org"})", "Application/JSON; charset=utf-8").result_int(),
              201);
    expect_problem(post_user("{"), 400);
    expect_problem(post_user(R"({"name":"B","email":"USER1@EXAMPLE.COM"})"), 409);
}

TEST_F(Handler, DeleteCacheNeedsToken) {
    get("/users/1");
    expect_problem(call(bhttp::verb::delete_, "/cache"), 401);
    expect_problem(call(bhttp::verb::delete_, "/cache", "", {{"Authorization", "Bearer nope"}}), 403);
    EXPECT_EQ(users.stats().cache.size, 1u) << "refused deletes clear nothing";
    auto r = call(bhttp::verb::delete_, "/cache", "", {{"Authorization", "Bearer s3cret"}});
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(json(r)["cleared"], 1);
}

TEST_F(Handler, CacheStatusShape) {
    get("/users/1");
    get("/users/1");
    auto s = json(get("/cache-status"));
    EXPECT_EQ(s["cache"]["hits"], 1);
    EXPECT_EQ(s["cache"]["misses"], 1);
    EXPECT_DOUBLE_EQ(s["cache"]["hit_rate"].get<double>(), 0.5);
    EXPECT_EQ(s["cache"]["ttl_seconds"], 60);
    EXPECT_EQ(s["db"]["reads"], 1);
    EXPECT_EQ(s["coalescing"]["inflight"], 0);
    EXPECT_EQ(s["requests"]["total"], 2);
    EXPECT_TRUE(s["requests"]["average_response_time_ms"].is_number());
}

TEST_F(Handler, HealthzDraining) {
    EXPECT_EQ(json(get("/healthz"))["status"], "ok");
    state.draining = true;
    auto r = get("/healthz");
    EXPECT_EQ(r.result_int(), 503);
    EXPECT_EQ(json(r)["status"], "draining");
}

TEST_F(Handler, MetricsAreText) {
    get("/users/1");
    auto r = get("/metrics");
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_NE(r.body().view().find(R"(http_requests_total{method="GET",route="/users/{id}",code="200"} 1)"),
              std::string::npos)
        << r.body().view();
    EXPECT_NE(r.body().view().find("userapi_db_reads_total 1"), std::string::npos);
}

// Contract 8.2: a write's 503 says whether it was performed: "written": false when the store
// surely did not get it, null (with a detail saying so) when its outcome is unknown.
TEST_F(Handler, WriteFailuresSayWhetherTheyWereWritten) {
    repo.fail_writes = true;
    auto r = post_user(R"({"name":"A","email":"a@example.org"})");
    expect_problem(r, 503);
    EXPECT_EQ(json(r)["written"], false);
    repo.fail_writes = false;
    repo.fail_maybe_sent = true;
    r = post_user(R"({"name":"A","email":"a@example.org"})");
    expect_problem(r, 503);
    EXPECT_TRUE(json(r)["written"].is_null());
    EXPECT_NE(json(r)["detail"].get<std::string>().find("unknown"), std::string::npos);
    EXPECT_FALSE(r[bhttp::field::retry_after].empty());
}

// A read's 503 has no "written" member.
TEST_F(Handler, ReadFailuresHaveNoWrittenMember) {
    repo.fail_finds = true;
    const auto r = get("/users/5");
    expect_problem(r, 503);
    EXPECT_FALSE(json(r).contains("written"));
}

// Idempotency-Key: a replay has the recorded answer and Idempotent-Replayed: true; a bad key
// is 400; another body with the key is 422.
TEST_F(Handler, IdempotencyKeyReplaysAndRefuses) {
    const auto post = [&](std::string body, std::string key) {
        return call(bhttp::verb::post, "/users", std::move(body),
                    {{"Content-Type", "application/json"}, {"Idempotency-Key", std::move(key)}});
    };
    const auto first = post(R"({"name":"K","email":"k@example.org"})", "k-1");
    ASSERT_EQ(first.result_int(), 201u);
    EXPECT_EQ(first.find("Idempotent-Replayed"), first.end());
    const auto again = post(R"({"name":"K","email":"k@example.org"})", "\"k-1\"");
    ASSERT_EQ(again.result_int(), 201u) << again.body().view();
    EXPECT_EQ(again["Idempotent-Replayed"], "true");
    EXPECT_EQ(again[bhttp::field::location], first[bhttp::field::location]);
    EXPECT_EQ(again[bhttp::field::etag], first[bhttp::field::etag]);
    EXPECT_EQ(again.body().view(), first.body().view());
    expect_problem(post(R"({"name":"L","email":"l@example.org"})", "k-1"), 422);
    expect_problem(post(R"({"name":"L","email":"l@example.org"})", "has space"), 400);
    expect_problem(post(R"({"name":"L","email":"l@example.org"})", std::string(256, 'k')), 400);
    EXPECT_EQ(repo.inner.size(), 11u) << "one user created";
}

// Contract 8.3: Cache-Control: no-cache (any case, in a list, several fields) and max-age=0,
// or Pragma: no-cache without Cache-Control, read the store; the cached hit never answers them.
TEST_F(Handler, NoCacheDirectivesReadTheStore) {
    get("/users/4");
    ASSERT_EQ(get("/users/4")["X-Cache"], "HIT");
    const std::vector<std::vector<std::pair<std::string, std::string>>> fresh = {
        {{"Cache-Control", "no-cache"}},
        {{"Cache-Control", "No-Cache"}},
        {{"Cache-Control", "max-age=0"}},
        {{"Cache-Control", "max-age=\"0\""}},
        {{"Cache-Control", "no-store, max-age=0"}},
        {{"Cache-Control", "no-transform"}, {"cache-control", "no-cache"}},
        {{"Pragma", "no-cache"}}};
    for (const auto& headers : fresh) {
        const int before = repo.finds;
        const auto r = get("/users/4", headers);
        EXPECT_EQ(r.result_int(), 200u);
        EXPECT_EQ(r["X-Cache"], "MISS") << headers.front().second;
        EXPECT_EQ(repo.finds, before + 1);
        std::string head;
        http::request req{bhttp::verb::get, "/users/4", 11};
        for (auto& [k, v] : headers) req.insert(k, v);
        EXPECT_EQ(h->answer_at_once(req, http::request_info{peer, "x"}, head).kind,
                  http::request_handler::at_once::none)
            << "the fast path answered a no-cache request";
    }
    for (const auto& headers : std::vector<std::vector<std::pair<std::string, std::string>>>{
             {{"Cache-Control", "max-age=5"}},
             {{"Cache-Control", "no-store"}},
             {{"Pragma", "no-cache"}, {"Cache-Control", "max-age=60"}}}) {
        EXPECT_EQ(get("/users/4", headers)["X-Cache"], "HIT") << headers.front().second;
    }
}
