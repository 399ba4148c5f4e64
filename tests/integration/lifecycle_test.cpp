// The user lifecycle over real sockets (contract section 6): every status of PATCH, DELETE and
// the listing, ETags and conditional requests, negative entries and stale-while-revalidate.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using namespace userapi::testing;
using nlohmann::json;

namespace {

const header_list merge = {{"Content-Type", "application/merge-patch+json"}};

class Lifecycle : public ::testing::Test {
protected:
    test_server srv{test_settings()};
    std::uint16_t port = srv.port();

    http_response create(const std::string& tag) {
        return request(port, "POST", "/users", {{"Content-Type", "application/json"}},
                       R"({"name":"Life )" + tag + R"(","email":")" + tag + R"(@example.org"})");
    }
    http_response patch(std::int64_t id, const std::string& body, header_list h = merge) {
        return request(port, "PATCH", "/users/" + std::to_string(id), h, body);
    }
    static std::int64_t id_of(const http_response& r) { return json::parse(r.body)["id"]; }
    void expect_problem(const http_response& r, int status) {
        EXPECT_EQ(r.status, status) << r.body;
        EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
        if (!r.body.empty()) {
            EXPECT_EQ(json::parse(r.body)["status"], status);
        }
    }
};

}  // namespace

// POST and GET name the same strong ETag, "<id>-<version>"; GET says no-cache; a PATCH makes
// a new one.
TEST_F(Lifecycle, EtagsFollowTheVersion) {
    auto c = create("etag");
    ASSERT_EQ(c.status, 201);
    const auto id = id_of(c);
    EXPECT_EQ(c.header("ETag"), "\"" + std::to_string(id) + "-1\"");
    auto g = request(port, "GET", "/users/" + std::to_string(id));
    EXPECT_EQ(g.header("ETag"), c.header("ETag"));
    EXPECT_EQ(g.header("Cache-Control"), "no-cache");
    auto p = patch(id, R"({"name":"Changed"})");
    ASSERT_EQ(p.status, 200);
    EXPECT_EQ(p.header("ETag"), "\"" + std::to_string(id) + "-2\"");
    EXPECT_EQ(json::parse(p.body)["name"], "Changed");
    auto same = patch(id, R"({"name":"Changed"})");
    EXPECT_EQ(same.header("ETag"), p.header("ETag")) << "a patch that changes nothing keeps the version";
}

// If-None-Match: 304 with no body (weak comparison, lists, *), for GET and HEAD, hit or miss.
TEST_F(Lifecycle, IfNoneMatchIs304) {
    const auto etag = request(port, "GET", "/users/3").header("ETag");
    for (const std::string& inm : std::vector<std::string>{etag, "W/" + etag, "\"zzz\", " + etag, "*"}) {
        auto r = request(port, "GET", "/users/3", {{"If-None-Match", inm}});
        EXPECT_EQ(r.status, 304) << inm;
        EXPECT_EQ(r.body, "");
        EXPECT_FALSE(r.has_header("Content-Length")) << "a 304 must not claim an empty body";
        EXPECT_EQ(r.header("ETag"), etag);
        EXPECT_EQ(r.header("Cache-Control"), "no-cache");
        EXPECT_EQ(r.header("X-Cache"), "HIT");
    }
    EXPECT_EQ(request(port, "HEAD", "/users/3", {{"If-None-Match", etag}}).status, 304);
    EXPECT_EQ(request(port, "GET", "/users/3", {{"If-None-Match", "\"3-99\""}}).status, 200);
    auto cold = request(port, "GET", "/users/4", {{"If-None-Match", "\"4-1\""}});
    EXPECT_EQ(cold.status, 304) << "a miss is conditional too";
    EXPECT_EQ(cold.header("X-Cache"), "MISS");
    expect_problem(request(port, "GET", "/users/3", {{"If-None-Match", "no-quotes"}}), 400);
}

// If-Match: 412 when it names another version (nothing written), 200/204 when it names this one.
TEST_F(Lifecycle, IfMatchIs412OrTheWrite) {
    auto c = create("ifmatch");
    const auto id = id_of(c);
    const auto etag = c.header("ETag");
    auto refused = patch(id, R"({"name":"Never"})", {{"Content-Type", "application/json"}, {"If-Match", "\"9-9\""}});
    expect_problem(refused, 412);
    EXPECT_EQ(json::parse(request(port, "GET", "/users/" + std::to_string(id)).body)["name"], "Life ifmatch");
    auto weak = patch(id, R"({"name":"Never"})", {{"Content-Type", "application/json"}, {"If-Match", "W/" + etag}});
    expect_problem(weak, 412);  // strong comparison
    auto ok = patch(id, R"({"name":"Matched"})", {{"Content-Type", "application/json"}, {"If-Match", etag}});
    EXPECT_EQ(ok.status, 200);
    expect_problem(request(port, "DELETE", "/users/" + std::to_string(id), {{"If-Match", etag}}), 412);
    EXPECT_EQ(request(port, "DELETE", "/users/" + std::to_string(id), {{"If-Match", "*"}}).status, 204);
    expect_problem(request(port, "DELETE", "/users/" + std::to_string(id), {{"If-Match", "*"}}), 404);
}

// Every refusal of a PATCH: 400 naming the member, 404, 409, 415, and an id that is not one.
TEST_F(Lifecycle, PatchRefusals) {
    const auto a = id_of(create("pa"));
    const auto b = id_of(create("pb"));
    expect_problem(patch(a, R"({"name":null})"), 400);
    expect_problem(patch(a, "{}"), 400);
    expect_problem(patch(a, R"({"id":1})"), 400);
    expect_problem(patch(a, R"({"version":3})"), 400);
    expect_problem(patch(a, R"({"email":"nope"})"), 400);
    expect_problem(patch(a, "[1]"), 400);
    expect_problem(patch(424242, R"({"name":"Nobody"})"), 404);
    expect_problem(patch(b, R"({"email":"PA@example.org"})"), 409);
    expect_problem(patch(a, R"({"name":"X"})", {{"Content-Type", "text/plain"}}), 415);
    expect_problem(request(port, "PATCH", "/users/0", merge, R"({"name":"X"})"), 400);
    auto own = patch(a, R"({"email":"PA@EXAMPLE.ORG"})");
    EXPECT_EQ(own.status, 200) << "changing the case of one's own email";
}

// DELETE: 204 with no body, then 404 everywhere; the email is free again, the id is not.
TEST_F(Lifecycle, DeleteThen404) {
    auto c = create("del");
    const auto id = id_of(c);
    ASSERT_EQ(request(port, "GET", "/users/" + std::to_string(id)).header("X-Cache"), "HIT");
    auto d = request(port, "DELETE", "/users/" + std::to_string(id));
    EXPECT_EQ(d.status, 204);
    EXPECT_EQ(d.body, "");
    EXPECT_FALSE(d.has_header("Content-Length")) << "RFC 9110: no Content-Length on a 204";
    expect_problem(request(port, "GET", "/users/" + std::to_string(id)), 404);
    auto again = create("del");
    ASSERT_EQ(again.status, 201);
    EXPECT_GT(id_of(again), id);
}

// --require-if-match: 428 without If-Match, the write with it.
TEST(LifecycleRequireIfMatch, PreconditionRequiredIs428) {
    auto cfg = test_settings();
    cfg.require_if_match = true;
    test_server srv(cfg);
    auto g = request(srv.port(), "GET", "/users/5");
    auto r = request(srv.port(), "PATCH", "/users/5", merge, R"({"name":"X"})");
    EXPECT_EQ(r.status, 428);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(request(srv.port(), "DELETE", "/users/5").status, 428);
    header_list with = merge;
    with.emplace_back("If-Match", g.header("ETag"));
    EXPECT_EQ(request(srv.port(), "PATCH", "/users/5", with, R"({"name":"X"})").status, 200);
}

// The listing: pages in id order, next and Link while there is more, 400 for bad parameters.
TEST_F(Lifecycle, ListingPages) {
    std::vector<std::int64_t> seen;
    std::string path = "/users?limit=15";
    for (int pages = 0; !path.empty() && pages < 20; ++pages) {
        auto r = request(port, "GET", path);
        ASSERT_EQ(r.status, 200) << r.body;
        auto body = json::parse(r.body);
        for (auto& u : body["users"]) seen.push_back(u["id"]);
        if (body["next"].is_null()) {
            EXPECT_FALSE(r.has_header("Link"));
            path.clear();
        } else {
            path = body["next"];
            EXPECT_EQ(r.header("Link"), "<" + path + ">; rel=\"next\"");
        }
    }
    ASSERT_EQ(seen.size(), 50u);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    auto page = json::parse(request(port, "GET", "/users?after=48&other=ignored").body);
    EXPECT_EQ(page["users"].size(), 2u);
    EXPECT_TRUE(page["next"].is_null());
    for (auto q : {"limit=0", "limit=101", "limit=abc", "after=-1", "after=01", "limit=5&limit=6"})
        expect_problem(request(port, "GET", std::string("/users?") + q), 400);
    auto head = request(port, "HEAD", "/users?limit=2");
    EXPECT_EQ(head.status, 200);
    EXPECT_FALSE(head.header("Link").empty());
}

// A 404 is remembered: MISS, then HIT without a read; the create of that id ends it at once.
TEST_F(Lifecycle, NotFoundIsRememberedUntilCreated) {
    const auto next = id_of(create("neg")) + 1;
    const auto reads = cache_status(port)["db"]["reads"].get<int>();
    auto first = request(port, "GET", "/users/" + std::to_string(next));
    EXPECT_EQ(first.status, 404);
    EXPECT_EQ(first.header("X-Cache"), "MISS");
    auto second = request(port, "GET", "/users/" + std::to_string(next));
    EXPECT_EQ(second.status, 404);
    EXPECT_EQ(second.header("X-Cache"), "HIT");
    auto status = cache_status(port);
    EXPECT_EQ(status["db"]["reads"].get<int>(), reads + 1);
    EXPECT_EQ(status["cache"]["negative_size"], 1);
    EXPECT_EQ(status["cache"]["negative_hits"], 1);
    EXPECT_EQ(id_of(create("neg2")), next);
    EXPECT_EQ(request(port, "GET", "/users/" + std::to_string(next)).status, 200);
}

// --cache-stale-ms: past the TTL the user is answered STALE at once while one refresh runs;
// the refreshed value then replaces it. Time moves only when the test says so.
TEST(LifecycleStale, StaleWhileRevalidate) {
    userapi::core::manual_clock clock;
    auto cfg = test_settings();
    cfg.cache_ttl_ms = 60000;
    cfg.cache_stale_ms = 30000;
    test_server srv(cfg, nullptr, nullptr, &clock);
    const auto port = srv.port();
    ASSERT_EQ(request(port, "GET", "/users/7").header("X-Cache"), "MISS");
    ASSERT_EQ(request(port, "PATCH", "/users/7", merge, R"({"name":"Seven"})").status, 200);
    clock.advance(61s);
    auto stale = request(port, "GET", "/users/7");
    EXPECT_EQ(stale.status, 200);
    EXPECT_EQ(stale.header("X-Cache"), "STALE");
    ASSERT_TRUE(eventually([&] { return request(port, "GET", "/users/7").header("X-Cache") == "HIT"; }))
        << "the refresh never replaced the stale entry";
    auto s = cache_status(port)["cache"];
    EXPECT_GE(s["stale_served"].get<int>(), 1);
    EXPECT_EQ(s["refreshes"], 1);
    EXPECT_EQ(s["stale_ms"], 30000);
}
