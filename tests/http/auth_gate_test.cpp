// The gate between a request and its route: the scope each route needs, v2 without
// credentials, the admin token, anonymous scopes, and the RFC 6750 challenge of each refusal.
#include "userapi/http/auth_gate.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "userapi/auth/api_keys.hpp"

using namespace userapi;
using bhttp = boost::beast::http::verb;
using kind = http::auth_gate::decision::kind_type;

namespace {

http::request req(bhttp v, const std::string& target, const std::string& authorization = "") {
    http::request r{v, target, 11};
    if (!authorization.empty()) r.set(boost::beast::http::field::authorization, authorization);
    return r;
}

struct gate_fixture {
    explicit gate_fixture(config::settings s, std::string keys_file = "") : cfg(std::move(s)) {
        auth::options o;
        o.admin_token = cfg.admin_token;
        o.api_keys_file = std::move(keys_file);
        a = std::make_unique<auth::authenticator>(o, clock);
        a->start();
        gate = std::make_unique<http::auth_gate>(cfg, a.get(), stats);
    }
    http::auth_gate::decision decide(bhttp v, const std::string& target, const std::string& authorization = "") {
        const auto r = req(v, target, authorization);
        return gate->decide(r, http::match_route(target).which, v, false);
    }
    config::settings cfg;
    core::manual_clock clock;
    http::metrics stats;
    std::unique_ptr<auth::authenticator> a;
    std::unique_ptr<http::auth_gate> gate;
};

TEST(AuthGate, ScopesOfTheRoutes) {
    EXPECT_EQ(http::scope_needed(http::route::user, bhttp::get), auth::scope::users_read);
    EXPECT_EQ(http::scope_needed(http::route::user, bhttp::head), auth::scope::users_read);
    EXPECT_EQ(http::scope_needed(http::route::user, bhttp::patch), auth::scope::users_write);
    EXPECT_EQ(http::scope_needed(http::route::user, bhttp::delete_), auth::scope::users_write);
    EXPECT_EQ(http::scope_needed(http::route::users, bhttp::get), auth::scope::users_read);
    EXPECT_EQ(http::scope_needed(http::route::users, bhttp::post), auth::scope::users_write);
    EXPECT_EQ(http::scope_needed(http::route::cache, bhttp::delete_), auth::scope::admin);
    EXPECT_EQ(http::scope_needed(http::route::cache_status, bhttp::get), auth::scope::admin);
    for (auto r : {http::route::healthz, http::route::readyz, http::route::metrics, http::route::none})
        EXPECT_FALSE(http::scope_needed(r, bhttp::get));
    EXPECT_FALSE(http::scope_needed(http::route::user, bhttp::put)) << "405 comes before credentials";
    EXPECT_FALSE(http::scope_needed(http::route::cache, bhttp::get));
}

TEST(AuthGate, WithoutCredentialsEverythingPassesButTheAdminTokensRoute) {
    gate_fixture open{config::settings{}};
    EXPECT_FALSE(open.gate->active()) << "nothing to look at: no cost on any request";
    config::settings s;
    s.admin_token = "s3cret";
    gate_fixture g{s};
    EXPECT_EQ(g.decide(bhttp::get, "/users/1", "Bearer whatever").kind, kind::pass) << "v2: Authorization not read";
    EXPECT_EQ(g.decide(bhttp::get, "/cache-status").kind, kind::pass);
    const auto missing = g.decide(bhttp::delete_, "/cache");
    EXPECT_EQ(missing.kind, kind::refuse);
    EXPECT_EQ(missing.reason, http::auth_failure::missing);
    EXPECT_EQ(g.decide(bhttp::delete_, "/cache", "Bearer nope").reason, http::auth_failure::insufficient_scope);
    const auto ok = g.decide(bhttp::delete_, "/cache", "Bearer s3cret");
    EXPECT_EQ(ok.kind, kind::pass);
    ASSERT_TRUE(ok.who);
    EXPECT_EQ(ok.who->identity, "admin-token");
}

TEST(AuthGate, AnonymousScopesWithoutCredentials) {
    config::settings s;
    s.admin_token = "s3cret";
    s.anonymous_scopes = std::vector<std::string>{"users:read"};
    gate_fixture g{s};
    EXPECT_TRUE(g.gate->active());
    EXPECT_EQ(g.decide(bhttp::get, "/users/1").kind, kind::pass);
    EXPECT_EQ(g.decide(bhttp::post, "/users").reason, http::auth_failure::missing);
    EXPECT_EQ(g.decide(bhttp::get, "/cache-status").reason, http::auth_failure::missing);
    EXPECT_EQ(g.decide(bhttp::get, "/cache-status", "Bearer s3cret").kind, kind::pass)
        << "the admin token opens what needs admin";
}

TEST(AuthGate, RefusalsAreRfc6750Challenges) {
    const std::string path = ::testing::TempDir() + "auth-gate-keys-" + std::to_string(::getpid()) + ".json";
    const auto key = auth::make_api_key("reader", {"users:read"});
    std::ofstream(path) << "{\"keys\":[" << key.entry_json << "]}";
    gate_fixture g{config::settings{}, path};
    auto refused = [&](bhttp v, const std::string& target, const std::string& authorization) {
        const auto r = req(v, target, authorization);
        const auto d = g.gate->decide(r, http::match_route(target).which, v, false);
        EXPECT_EQ(d.kind, kind::refuse) << target << " " << authorization;
        const auto peer = *core::parse_ip("127.0.0.1");  // request_info holds a reference to it
        http::request_info info{peer, "t"};
        http::exchange x(r, info);
        g.gate->refuse(x, d);
        return std::pair{x.res.result_int(), std::string(x.res[boost::beast::http::field::www_authenticate])};
    };
    EXPECT_EQ(refused(bhttp::get, "/users/1", ""), (std::pair{401u, std::string("Bearer realm=\"userapi\"")}));
    const auto [s1, c1] = refused(bhttp::get, "/users/1", "Bearer unknown");
    EXPECT_EQ(s1, 401u);
    EXPECT_EQ(
        c1,
        "Bearer realm=\"userapi\", error=\"invalid_token\", error_description=\"the token is not a known API key\"");
    const auto [s2, c2] = refused(bhttp::get, "/users/1", "Digest x");
    EXPECT_EQ(s2, 400u);
    EXPECT_NE(c2.find("error=\"invalid_request\""), std::string::npos) << c2;
    const auto [s3, c3] = refused(bhttp::post, "/users", "Bearer " + key.key);
    EXPECT_EQ(s3, 403u);
    EXPECT_NE(c3.find("error=\"insufficient_scope\""), std::string::npos) << c3;
    EXPECT_NE(c3.find("scope=\"users:write\""), std::string::npos) << c3;
    EXPECT_EQ(c3.find(key.key), std::string::npos);
    EXPECT_EQ(g.stats.auth_failures(http::auth_failure::missing), 1u);
    EXPECT_EQ(g.stats.auth_failures(http::auth_failure::invalid_token), 1u);
    EXPECT_EQ(g.stats.auth_failures(http::auth_failure::invalid_request), 1u);
    EXPECT_EQ(g.stats.auth_failures(http::auth_failure::insufficient_scope), 1u);
    EXPECT_EQ(g.decide(bhttp::get, "/users/1", "Bearer " + key.key).kind, kind::pass);
    std::remove(path.c_str());
}

}  // namespace
