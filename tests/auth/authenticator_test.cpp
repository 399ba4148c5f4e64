// The authenticator: the memo (until exp, at most 5 minutes, forgotten on reload), reloads that
// keep the old set when the file is bad, and a JWK Set URL served by a local HTTP server:
// fetched at start, again for an unknown kid (at most once per 30 s) and on a period, the old
// keys kept when a fetch fails.
#include "userapi/auth/authenticator.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>

#include "support/jwt_minter.hpp"
#include "support/tiny_http_server.hpp"
#include "userapi/auth/base64url.hpp"

using namespace userapi;
using namespace std::chrono_literals;
using nlohmann::json;
using verdict = auth::authenticator::verdict;
namespace fixtures = userapi::testing;

namespace {

std::string temp_path(const std::string& name) {
    return ::testing::TempDir() + "userapi-auth-" + std::to_string(::getpid()) + "-" + name;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

std::string hex_digest(std::string_view key) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : auth::sha256_of(key)) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string key_file(std::initializer_list<std::pair<std::string, std::string>> keys) {
    json entries = json::array();
    for (const auto& [id, key] : keys)
        entries.push_back({{"id", id}, {"sha256", hex_digest(key)}, {"scopes", {"users:read"}}});
    return json{{"keys", entries}}.dump();
}

// A wall clock the test moves, in seconds since the epoch.
struct wall_clock {
    std::atomic<double> now{1'900'000'000};
    std::function<double()> fn() {
        return [this] { return now.load(); };
    }
};

class Authenticator : public ::testing::Test {
protected:
    auth::options jwt_options(const std::string& jwks) {
        auth::options o;
        o.jwks = jwks;
        o.rules = {"https://issuer.test", "userapi", 0};
        return o;
    }
    json claims(double lifetime) {
        return {{"iss", "https://issuer.test"}, {"aud", "userapi"}, {"sub", "alice"}, {"exp", wall.now + lifetime}};
    }
    core::manual_clock clock;
    wall_clock wall;
    fixtures::signing_key k1{"EC", "k1"}, k2{"EC", "k2"}, k3{"EC", "k3"};
};

TEST_F(Authenticator, ApiKeysAreForgottenWhenTheFileIsReloadedWithoutThem) {
    const auto path = temp_path("keys.json");
    write(path, key_file({{"a", "key-a"}, {"b", "key-b"}}));
    auth::options o;
    o.api_keys_file = path;
    auth::authenticator a(o, clock);
    a.start();
    EXPECT_EQ(a.check("key-a").kind, verdict::valid);
    EXPECT_EQ(a.check("key-a").who->identity, "key:a");
    EXPECT_EQ(a.check("key-b").kind, verdict::valid);
    EXPECT_EQ(a.check("key-c").kind, verdict::invalid);
    write(path, key_file({{"b", "key-b"}}));
    EXPECT_EQ(a.check("key-a").kind, verdict::valid) << "until the reload";
    EXPECT_TRUE(a.reload_now());
    EXPECT_EQ(a.check("key-a").kind, verdict::invalid) << "a removed key is refused at once, memo or not";
    EXPECT_EQ(a.check("key-b").kind, verdict::valid);
    std::remove(path.c_str());
}

TEST_F(Authenticator, ABadFileOnReloadKeepsTheOldSet) {
    const auto path = temp_path("keys-bad.json");
    write(path, key_file({{"a", "key-a"}}));
    auth::options o;
    o.api_keys_file = path;
    auth::authenticator a(o, clock);
    a.start();
    write(path, "{\"keys\": [");
    EXPECT_FALSE(a.reload_now());
    EXPECT_EQ(a.check("key-a").kind, verdict::valid);
    std::remove(path.c_str());
    EXPECT_FALSE(a.reload_now());
    EXPECT_EQ(a.check("key-a").kind, verdict::valid);
}

TEST_F(Authenticator, StartRefusesAnUnusableFileNamingIt) {
    auth::options o;
    o.api_keys_file = temp_path("missing.json");
    auth::authenticator a(o, clock);
    try {
        a.start();
        FAIL() << "start() accepted a missing key file";
    } catch (const auth::setup_error& e) {
        EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos) << e.what();
    }
}

TEST_F(Authenticator, AVerifiedTokenIsRememberedUntilItsExp) {
    const auto path = temp_path("jwks-exp.json");
    write(path, fixtures::jwks_of({k1.jwk("ES256")}));
    auth::authenticator a(jwt_options(path), clock, wall.fn());
    a.start();
    const auto t = k1.token("ES256", claims(30));
    ASSERT_EQ(a.check(t).kind, verdict::valid);
    clock.advance(29s);
    wall.now = wall.now + 29;
    EXPECT_EQ(a.check(t).kind, verdict::valid);
    clock.advance(2s);
    wall.now = wall.now + 2;
    const auto v = a.check(t);
    EXPECT_EQ(v.kind, verdict::invalid) << "past its exp, the memo no longer answers";
    EXPECT_STREQ(v.description, "the token expired");
    std::remove(path.c_str());
}

TEST_F(Authenticator, AVerifiedTokenIsRememberedAtMostFiveMinutes) {
    const auto path = temp_path("jwks-5min.json");
    write(path, fixtures::jwks_of({k1.jwk("ES256")}));
    auth::authenticator a(jwt_options(path), clock, wall.fn());
    a.start();
    const auto t = k1.token("ES256", claims(3600));
    ASSERT_EQ(a.check(t).kind, verdict::valid);
    wall.now = wall.now + 7200;  // the verifier would now call it expired
    clock.advance(299s);
    EXPECT_EQ(a.check(t).kind, verdict::valid) << "the memo answers";
    clock.advance(2s);
    EXPECT_EQ(a.check(t).kind, verdict::invalid) << "after 5 minutes it is verified again";
    std::remove(path.c_str());
}

TEST_F(Authenticator, ReloadingTheJwkSetForgetsVerifiedTokens) {
    const auto path = temp_path("jwks-reload.json");
    write(path, fixtures::jwks_of({k1.jwk("ES256")}));
    auth::authenticator a(jwt_options(path), clock, wall.fn());
    a.start();
    const auto t = k1.token("ES256", claims(600));
    ASSERT_EQ(a.check(t).kind, verdict::valid);
    write(path, fixtures::jwks_of({k2.jwk("ES256")}));
    EXPECT_EQ(a.check(t).kind, verdict::valid);
    ASSERT_TRUE(a.reload_now());
    EXPECT_EQ(a.check(t).kind, verdict::unknown_kid) << "its key is gone";
    EXPECT_EQ(a.jwks_refreshes(true), 1u);
    write(path, "{}");
    EXPECT_FALSE(a.reload_now());
    EXPECT_EQ(a.jwks_refreshes(false), 1u);
    EXPECT_EQ(a.check(k2.token("ES256", claims(600))).kind, verdict::valid) << "the last good set stays";
    std::remove(path.c_str());
}

bool wait_for(std::future<void>& f) { return f.wait_for(15s) == std::future_status::ready; }

TEST_F(Authenticator, AUrlIsFetchedAgainForAnUnknownKidAtMostOncePer30Seconds) {
    fixtures::tiny_http_server jwks;
    jwks.answer(200, fixtures::jwks_of({k1.jwk("ES256")}));
    auth::authenticator a(jwt_options(jwks.url()), clock, wall.fn());
    a.start();
    EXPECT_EQ(jwks.requests(), 1) << "fetched at start";
    // The issuer rotates: k2 appears.
    jwks.answer(200, fixtures::jwks_of({k1.jwk("ES256"), k2.jwk("ES256")}));
    const auto t2 = k2.token("ES256", claims(600));
    ASSERT_EQ(a.check(t2).kind, verdict::unknown_kid);
    std::promise<void> fetched;
    auto done = fetched.get_future();
    ASSERT_TRUE(a.refresh_for_unknown_kid([&] { fetched.set_value(); }));
    ASSERT_TRUE(wait_for(done));
    EXPECT_EQ(jwks.requests(), 2);
    EXPECT_EQ(a.check(t2).kind, verdict::valid);
    // Another unknown kid within 30 s: no fetch.
    jwks.answer(200, fixtures::jwks_of({k1.jwk("ES256"), k2.jwk("ES256"), k3.jwk("ES256")}));
    const auto t3 = k3.token("ES256", claims(600));
    EXPECT_EQ(a.check(t3).kind, verdict::unknown_kid);
    clock.advance(29s);
    EXPECT_FALSE(a.refresh_for_unknown_kid([] {}));
    EXPECT_EQ(jwks.requests(), 2);
    clock.advance(2s);
    std::promise<void> again;
    auto done2 = again.get_future();
    ASSERT_TRUE(a.refresh_for_unknown_kid([&] { again.set_value(); }));
    ASSERT_TRUE(wait_for(done2));
    EXPECT_EQ(jwks.requests(), 3);
    EXPECT_EQ(a.check(t3).kind, verdict::valid);
    EXPECT_EQ(a.jwks_refreshes(true), 2u);
}

TEST_F(Authenticator, AFailedFetchKeepsTheOldKeysAndIsCounted) {
    fixtures::tiny_http_server jwks;
    jwks.answer(200, fixtures::jwks_of({k1.jwk("ES256")}));
    auth::authenticator a(jwt_options(jwks.url()), clock, wall.fn());
    a.start();
    const auto t1 = k1.token("ES256", claims(600));
    jwks.answer(500, "down");
    std::promise<void> fetched;
    auto done = fetched.get_future();
    ASSERT_TRUE(a.refresh_for_unknown_kid([&] { fetched.set_value(); }));
    ASSERT_TRUE(wait_for(done));
    EXPECT_EQ(a.jwks_refreshes(false), 1u);
    EXPECT_EQ(a.jwks_refreshes(true), 0u);
    EXPECT_EQ(a.check(t1).kind, verdict::valid) << "the keys it had";
    // Not JSON at all: the same.
    jwks.answer(200, "<html>");
    a.reload();
    for (int i = 0; i < 1500 && a.jwks_refreshes(false) < 2; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(a.jwks_refreshes(false), 2u);
    EXPECT_EQ(a.check(t1).kind, verdict::valid);
}

TEST_F(Authenticator, AUrlIsFetchedAgainEveryRefreshPeriod) {
    fixtures::tiny_http_server jwks;
    jwks.answer(200, fixtures::jwks_of({k1.jwk("ES256")}));
    auto o = jwt_options(jwks.url());
    o.jwks_refresh = 1s;
    auth::authenticator a(o, clock, wall.fn());
    a.start();
    // Real time: the period is the thread's own timer. Bounded: at most 10 s. The third request
    // is seen by the server before its refresh is counted: wait for the count, not the request.
    for (int i = 0; i < 1000 && a.jwks_refreshes(true) < 2; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_GE(jwks.requests(), 3);
    EXPECT_GE(a.jwks_refreshes(true), 2u);
}

TEST_F(Authenticator, AnUnreachableUrlAtStartIsASetupError) {
    int port = 0;
    {
        fixtures::tiny_http_server gone;  // a port that was just free
        port = std::stoi(gone.url().substr(17, 5));
    }
    auto o = jwt_options("http://127.0.0.1:" + std::to_string(port) + "/jwks.json");
    o.fetch_timeout = 2s;
    auth::authenticator a(o, clock, wall.fn());
    EXPECT_THROW(a.start(), auth::setup_error);
}

TEST_F(Authenticator, TheAdminTokenIsItsOwnIdentity) {
    auth::options o;
    o.admin_token = "s3cret";
    auth::authenticator a(o, clock);
    a.start();
    EXPECT_FALSE(a.configured()) << "the admin token alone is no credentials (contract 9.1)";
    const auto v = a.check("s3cret");
    ASSERT_EQ(v.kind, verdict::valid);
    EXPECT_EQ(v.who->identity, "admin-token");
    EXPECT_TRUE(v.who->scopes.has(auth::scope::admin));
    EXPECT_FALSE(v.who->scopes.has(auth::scope::users_read));
    EXPECT_FALSE(a.is_admin_token("s3cre"));
    EXPECT_FALSE(a.is_admin_token("s3cret!"));
}

TEST(TokenMemo, ComparesTheTokenNotOnlyItsHash) {
    auth::token_memo memo(4);
    core::manual_clock clock;
    const auto now = clock.now();
    auto who = std::make_shared<auth::principal>();
    who->identity = "key:a";
    memo.remember("token-a", who, now + 10s, now, memo.generation());
    ASSERT_TRUE(memo.find("token-a", now));
    EXPECT_EQ((*memo.find("token-a", now))->identity, "key:a");
    EXPECT_FALSE(memo.find("token-b", now));
    EXPECT_FALSE(memo.find("token-a", now + 10s)) << "until, not including";
}

TEST(TokenMemo, IsBoundedAndForgets) {
    auth::token_memo memo(3);
    core::manual_clock clock;
    const auto now = clock.now();
    auto who = std::make_shared<auth::principal>();
    for (int i = 0; i < 10; ++i) memo.remember("t" + std::to_string(i), who, now + 10s, now, memo.generation());
    EXPECT_LE(memo.size_here(), 3u);
    EXPECT_TRUE(memo.find("t9", now));
    const auto seen = memo.generation();
    memo.forget_all();
    EXPECT_FALSE(memo.find("t9", now));
    memo.remember("late", who, now + 10s, now, seen);
    EXPECT_FALSE(memo.find("late", now)) << "verified against credentials that were replaced meanwhile";
}

TEST(TokenMemo, EachThreadHasItsOwnTable) {
    auth::token_memo memo;
    core::manual_clock clock;
    const auto now = clock.now();
    memo.remember("t", std::make_shared<auth::principal>(), now + 10s, now, memo.generation());
    bool seen_elsewhere = true;
    std::thread([&] { seen_elsewhere = memo.find("t", now) != nullptr; }).join();
    EXPECT_FALSE(seen_elsewhere);
    EXPECT_TRUE(memo.find("t", now));
}

}  // namespace
