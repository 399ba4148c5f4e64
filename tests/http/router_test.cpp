#include "userapi/http/router.hpp"

#include <gtest/gtest.h>

using namespace userapi::http;

TEST(Router, MatchesEveryRoute) {
    EXPECT_EQ(match_route("/users/1").which, route::user);
    EXPECT_EQ(match_route("/users/1").id, "1");
    EXPECT_EQ(match_route("/users").which, route::users);
    EXPECT_EQ(match_route("/cache").which, route::cache);
    EXPECT_EQ(match_route("/cache-status").which, route::cache_status);
    EXPECT_EQ(match_route("/healthz").which, route::healthz);
    EXPECT_EQ(match_route("/metrics").which, route::metrics);
    EXPECT_EQ(match_route("/users/5?verbose=1").id, "5") << "query strings are ignored";
    EXPECT_EQ(match_route("http://example.org/users/6").id, "6") << "absolute-form targets";
    EXPECT_EQ(match_route("http://example.org").which, route::none);
    for (auto p : {"/", "/nope", "/api/users/1", "/healthzz", "/userz", "/cache/x"})
        EXPECT_EQ(match_route(p).which, route::none) << p;
}

// Every path under /users, /cache and /cache-status costs a token; health and metrics never.
TEST(Router, LimitedPaths) {
    for (auto p : {"/users", "/users/1", "/users/1/extra", "/users/", "/cache", "/cache/x", "/cache-status"})
        EXPECT_TRUE(match_route(p).limited) << p;
    for (auto p : {"/healthz", "/metrics", "/", "/userz", "/cachex"}) EXPECT_FALSE(match_route(p).limited) << p;
}

TEST(Router, CanonicalIds) {
    EXPECT_EQ(parse_user_id("1"), 1);
    EXPECT_EQ(parse_user_id("9223372036854775807"), INT64_MAX);
    for (auto bad : {"0", "-1", "abc", "01", "1.5", "99999999999999999999", "", "9223372036854775808", "+1", "1a",
                     "0x10", "1e3", "00", " 1", "1/extra"})
        EXPECT_FALSE(parse_user_id(bad)) << bad;
}

TEST(Router, AllowedMethods) {
    EXPECT_EQ(allowed_methods(route::user), "GET, HEAD, PATCH, DELETE");
    EXPECT_EQ(allowed_methods(route::users), "GET, HEAD, POST");
    EXPECT_EQ(allowed_methods(route::cache), "DELETE");
    EXPECT_EQ(route_pattern(route::user), "/users/{id}");
}
