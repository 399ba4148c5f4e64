#include "userapi/config/config.hpp"
#include "userapi/store/conninfo.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

using userapi::config::load;

namespace {

std::string write_file(const std::string& text) {
    static int n = 0;
    const std::string path = ::testing::TempDir() + "userapi-config-" + std::to_string(++n) + ".json";
    std::ofstream(path) << text;
    return path;
}

// Loading must fail with exit 2 and a message matching `names`.
void expect_rejected(const std::vector<std::string>& args, const std::string& names) {
    auto r = load(args, nullptr);
    EXPECT_FALSE(r.config) << ::testing::PrintToString(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find(names), std::string::npos) << r.output;
}

}  // namespace

TEST(Config, DefaultsMatchTheContract) {
    auto r = load({}, nullptr);
    ASSERT_TRUE(r.config);
    const auto& c = *r.config;
    EXPECT_EQ(c.address, "127.0.0.1");
    EXPECT_EQ(c.port, 8080);
    EXPECT_EQ(c.rate_limit_capacity, 5);
    EXPECT_EQ(c.rate_limit_refill_per_minute, 10);
    EXPECT_EQ(c.cache_capacity, 10000u);
    EXPECT_EQ(c.cache_ttl_ms, 60000);
    EXPECT_EQ(c.db_latency_ms, 200);
    EXPECT_EQ(c.db_queue_limit, 1000u);
    EXPECT_EQ(c.seed_users, 3);
    EXPECT_EQ(c.max_body_bytes, 16384u);
}

// The shipped config/userapi.json holds exactly the built-in defaults.
TEST(Config, ShippedFileEqualsDefaults) {
    auto r = load({"--config", USERAPI_SOURCE_DIR "/config/userapi.json"}, nullptr);
    ASSERT_TRUE(r.config) << r.output;
    EXPECT_EQ(r.config->summary(), load({}, nullptr).config->summary());
}

TEST(Config, OptionsOverrideFileOverridesDefaults) {
    const auto path = write_file(R"({"cache": {"capacity": 7}, "rate_limit": {"trusted_proxies": ["10.0.0.0/8"]}})");
    auto a = load({"--config", path}, nullptr);
    ASSERT_TRUE(a.config) << a.output;
    EXPECT_EQ(a.config->cache_capacity, 7u);
    EXPECT_EQ(a.config->trusted_proxies.size(), 1u);
    auto b = load({"--config", path, "--cache-capacity", "9", "--trusted-proxy", "192.0.2.0/24", "--trusted-proxy=::1"},
                  nullptr);
    ASSERT_TRUE(b.config) << b.output;
    EXPECT_EQ(b.config->cache_capacity, 9u);
    EXPECT_EQ(b.config->trusted_proxies, (std::vector<std::string>{"192.0.2.0/24", "::1"}));
}

TEST(Config, FlagsAndFractions) {
    auto r = load({"--no-rate-limit", "--rate-limit-refill-per-minute", "0.5", "--log-format", "json"}, nullptr);
    ASSERT_TRUE(r.config) << r.output;
    EXPECT_FALSE(r.config->rate_limit_enabled);
    EXPECT_DOUBLE_EQ(r.config->rate_limit_refill_per_minute, 0.5);
    EXPECT_EQ(r.config->log_format, "json");
}

// The admin token: flag over environment over file.
TEST(Config, AdminTokenPrecedence) {
    EXPECT_EQ(load({}, "env").config->admin_token, "env");
    EXPECT_EQ(load({"--admin-token", "flag"}, "env").config->admin_token, "flag");
    EXPECT_EQ(load({"--config", write_file(R"({"admin_token": "file"})")}, "env").config->admin_token, "env");
}

// An empty --admin-token would silently open DELETE /cache: it is an error, also when the
// environment holds a token. The config file's "" (its default) means no token.
TEST(Config, EmptyAdminTokenOnTheCommandLineIsAnError) {
    expect_rejected({"--admin-token", ""}, "--admin-token");
    expect_rejected({"--admin-token="}, "--admin-token");
    auto r = load({"--admin-token", ""}, "from-env");
    EXPECT_FALSE(r.config);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(load({"--config", write_file(R"({"admin_token": ""})")}, "env").config->admin_token, "env");
}

TEST(Config, MaxConnectionsPerClient) {
    EXPECT_EQ(load({}, nullptr).config->max_connections_per_client, 256u);
    EXPECT_EQ(load({"--max-connections-per-client", "4"}, nullptr).config->max_connections_per_client, 4u);
    expect_rejected({"--max-connections-per-client", "0"}, "--max-connections-per-client");
}

TEST(Config, BadCommandLinesExit2NamingTheCulprit) {
    expect_rejected({"--no-such-option"}, "no-such-option");
    expect_rejected({"--port"}, "--port");
    expect_rejected({"--port", "70000"}, "--port");
    expect_rejected({"--port", "abc"}, "--port");
    expect_rejected({"--port", "-1"}, "--port");
    expect_rejected({"--cache-capacity", "lots"}, "--cache-capacity");
    expect_rejected({"--cache-capacity", "0"}, "--cache-capacity");
    expect_rejected({"--db-queue-limit", "x"}, "--db-queue-limit");
    expect_rejected({"--db-batch-reads", "0"}, "--db-batch-reads");
    expect_rejected({"--db-batch-reads", "1001"}, "--db-batch-reads");
    expect_rejected({"--rate-limit-refill-per-minute", "fast"}, "--rate-limit-refill-per-minute");
    expect_rejected({"--rate-limit-refill-per-minute", "0"}, "--rate-limit-refill-per-minute");
    expect_rejected({"--log-level", "loud"}, "--log-level");
    expect_rejected({"--trusted-proxy", "300.1.2.3/40"}, "300.1.2.3/40");
    expect_rejected({"--address", "localhost"}, "--address");
    expect_rejected({"--port", "1", "--port", "2"}, "--port");
    expect_rejected({"--no-rate-limit=yes"}, "--no-rate-limit");
}

// --db-batch-reads: 1 (v1: one id per read) unless set, 1..1000, from the file too.
TEST(Config, BatchReads) {
    EXPECT_EQ(load({}, nullptr).config->db_batch_reads, 1u);
    EXPECT_EQ(load({"--db-batch-reads", "64"}, nullptr).config->db_batch_reads, 64u);
    EXPECT_EQ(load({"--db-batch-reads", "1000"}, nullptr).config->db_batch_reads, 1000u);
    auto f = load({"--config", write_file(R"({"db": {"batch_reads": 8}})")}, nullptr);
    ASSERT_TRUE(f.config) << f.output;
    EXPECT_EQ(f.config->db_batch_reads, 8u);
    expect_rejected({"--config", write_file(R"({"db": {"batch_reads": 0}})")}, "db.batch_reads");
    EXPECT_NE(load({"--help"}, nullptr).output.find("--db-batch-reads N"), std::string::npos);
}

TEST(Config, BadFilesExit2NamingTheKey) {
    expect_rejected({"--config", write_file(R"({"no_such_key": 1})")}, "no_such_key");
    expect_rejected({"--config", write_file(R"({"cache": {"no_such_key": 1}})")}, "cache.no_such_key");
    expect_rejected({"--config", write_file(R"({"cache": {"capacity": "lots"}})")}, "cache.capacity");
    expect_rejected({"--config", write_file(R"({"cache": {"capacity": 1.5}})")}, "cache.capacity");
    expect_rejected({"--config", write_file(R"({"cache": 5})")}, "cache");
    expect_rejected({"--config", write_file("[1, 2, 3]")}, "top level");
    expect_rejected({"--config", write_file(R"({"cache": )")}, "not valid JSON");
    expect_rejected({"--config", "/nonexistent/does-not-exist.json"}, "does-not-exist.json");
    expect_rejected({"--config", write_file(R"({"rate_limit": {"enabled": "yes"}})")}, "rate_limit.enabled");
}

TEST(Config, HelpAndVersion) {
    auto h = load({"--help"}, nullptr);
    EXPECT_FALSE(h.config);
    EXPECT_EQ(h.exit_code, 0);
    for (auto opt : {"--port", "--config", "--db-latency-ms", "--rate-limit-capacity", "--trusted-proxy"})
        EXPECT_NE(h.output.find(opt), std::string::npos) << opt;
    auto v = load({"--version"}, nullptr);
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_EQ(v.output.rfind("userapi ", 0), 0u);
}

// Several instances: a postgresql:// --data selects PostgreSQL; its password never shows.
TEST(Config, PostgresDataAndItsPasswordStaysSecret) {
    auto r = load({"--data", "postgresql://app:s3cr3t@db.example:5432/users", "--db-concurrency", "4"}, nullptr);
    ASSERT_TRUE(r.config) << r.output;
    EXPECT_TRUE(r.config->uses_postgresql());
    EXPECT_EQ(r.config->db_concurrency, 4u);
    EXPECT_EQ(r.config->summary().find("s3cr3t"), std::string::npos);
    EXPECT_NE(r.config->summary().find("data=postgresql://(not shown)"), std::string::npos) << r.config->summary();
    const auto shown = r.config->summary(userapi::store::redact_conninfo);
    EXPECT_EQ(shown.find("s3cr3t"), std::string::npos) << shown;
    EXPECT_NE(shown.find("data=postgresql://app@db.example:5432/users?password=***"), std::string::npos) << shown;
    EXPECT_FALSE(load({"--data", "users.db"}, nullptr).config->uses_postgresql());
}

TEST(Config, SeveralInstancesOptionsAreChecked) {
    expect_rejected({"--db-concurrency", "2"}, "--db-concurrency");  // SQLite has one writer
    expect_rejected({"--db-concurrency", "0", "--data", "postgres://h/db"}, "--db-concurrency");
    expect_rejected({"--rate-limit-store", "http://127.0.0.1:6379"}, "--rate-limit-store");
    expect_rejected({"--rate-limit-store-fallback", "maybe"}, "--rate-limit-store-fallback");
    expect_rejected({"--rate-limit-store-timeout-ms", "0"}, "--rate-limit-store-timeout-ms");
    auto r = load({"--rate-limit-store", "redis://127.0.0.1:6379/2", "--rate-limit-store-fallback", "closed",
                   "--instance-name", "api-1"},
                  nullptr);
    ASSERT_TRUE(r.config) << r.output;
    EXPECT_EQ(r.config->rate_limit_store, "redis://127.0.0.1:6379/2");
    EXPECT_EQ(r.config->rate_limit_store_fallback, "closed");
    EXPECT_EQ(r.config->instance_name, "api-1");
}

// Section 9: credentials, anonymous scopes and protected mode.
TEST(Config, CredentialsOptions) {
    auto r = load({"--api-keys", "/etc/keys.json", "--jwt-jwks", "https://issuer.test/jwks.json", "--jwt-issuer",
                   "https://issuer.test", "--jwt-audience", "userapi", "--jwt-leeway-s", "5", "--jwt-jwks-refresh-s",
                   "60", "--rate-limit-identity-capacity", "100"},
                  nullptr);
    ASSERT_TRUE(r.config) << r.output;
    const auto& c = *r.config;
    EXPECT_EQ(c.api_keys_file, "/etc/keys.json");
    EXPECT_EQ(c.jwt_jwks, "https://issuer.test/jwks.json");
    EXPECT_EQ(c.jwt_leeway_s, 5);
    EXPECT_EQ(c.jwt_jwks_refresh_s, 60);
    EXPECT_TRUE(c.credentials_configured());
    EXPECT_EQ(c.identity_capacity(), 100);
    EXPECT_EQ(c.identity_refill_per_minute(), 100) << "10x the per-client refill when not given";
    EXPECT_FALSE(c.anonymous_scopes);
    const auto defaults = *load({}, nullptr).config;
    EXPECT_EQ(defaults.identity_capacity(), 50);
    EXPECT_EQ(defaults.jwt_leeway_s, 60);
    EXPECT_EQ(defaults.jwt_jwks_refresh_s, 300);
    EXPECT_FALSE(defaults.credentials_configured());
}

TEST(Config, AnonymousScopesFromTheCommandLineAndTheFile) {
    auto r = load({"--anonymous-scopes", "users:read  users:write"}, nullptr);
    ASSERT_TRUE(r.config) << r.output;
    ASSERT_TRUE(r.config->anonymous_scopes);
    EXPECT_EQ(*r.config->anonymous_scopes, std::vector<std::string>{"users:read  users:write"});
    auto none = load({"--anonymous-scopes", ""}, nullptr);
    ASSERT_TRUE(none.config) << none.output;
    EXPECT_TRUE(none.config->anonymous_scopes) << "given, and empty: no scope at all";
    auto file = load(
        {"--config", write_file(R"({"auth": {"anonymous_scopes": ["users:read"], "jwt": {"leeway_s": 7}}})")}, nullptr);
    ASSERT_TRUE(file.config) << file.output;
    EXPECT_EQ(*file.config->anonymous_scopes, std::vector<std::string>{"users:read"});
    EXPECT_EQ(file.config->jwt_leeway_s, 7);
    expect_rejected({"--anonymous-scopes", "users:read users:delete"}, "users:delete");
}

TEST(Config, ProtectedModeRefusesAnOpenNonLoopbackAddress) {
    expect_rejected({"--address", "0.0.0.0"}, "--anonymous-scopes");
    expect_rejected({"--address", "::"}, "protected mode");
    EXPECT_TRUE(load({"--address", "127.0.0.2"}, nullptr).config) << "all of 127.0.0.0/8 is loopback";
    EXPECT_TRUE(load({"--address", "::1"}, nullptr).config);
    EXPECT_TRUE(load({"--address", "0.0.0.0", "--anonymous-scopes", "users:read"}, nullptr).config);
    EXPECT_TRUE(load({"--address", "0.0.0.0", "--api-keys", "keys.json"}, nullptr).config);
    EXPECT_FALSE(load({"--address", "0.0.0.0", "--admin-token", "t"}, nullptr).config)
        << "the admin token alone guards DELETE /cache, not the users";
    auto r = load({"--address", "0.0.0.0"}, nullptr);
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line: " << r.output;
}

TEST(Config, JwtNeedsIssuerAndAudience) {
    expect_rejected({"--jwt-jwks", "jwks.json"}, "--jwt-issuer");
    expect_rejected({"--jwt-jwks", "jwks.json", "--jwt-issuer", "i"}, "--jwt-audience");
    expect_rejected({"--jwt-issuer", "i"}, "only with --jwt-jwks");
    expect_rejected({"--jwt-jwks", "ftp://x/jwks", "--jwt-issuer", "i", "--jwt-audience", "a"}, "http");
    expect_rejected({"--jwt-jwks-refresh-s", "0"}, "--jwt-jwks-refresh-s");
}

// Contract 8.7: --cache-negative-capacity (0 = off) and --idempotency-ttl-s, from the command
// line or the file (cache.negative_capacity, users.idempotency_ttl_s), checked and in --help.
TEST(Config, NegativeCapacityAndIdempotencyTtl) {
    const auto d = load({}, nullptr);
    EXPECT_EQ(d.config->cache_negative_capacity, 1000u);
    EXPECT_EQ(d.config->idempotency_ttl_s, 86400);
    const auto c = load({"--cache-negative-capacity", "0", "--idempotency-ttl-s", "2"}, nullptr);
    ASSERT_TRUE(c.config) << c.output;
    EXPECT_EQ(c.config->cache_negative_capacity, 0u);
    EXPECT_EQ(c.config->idempotency_ttl_s, 2);
    const auto path = write_file(R"({"cache": {"negative_capacity": 7}, "users": {"idempotency_ttl_s": 60}})");
    const auto f = load({"--config", path}, nullptr);
    ASSERT_TRUE(f.config) << f.output;
    EXPECT_EQ(f.config->cache_negative_capacity, 7u);
    EXPECT_EQ(f.config->idempotency_ttl_s, 60);
    expect_rejected({"--cache-negative-capacity", "-1"}, "--cache-negative-capacity");
    expect_rejected({"--idempotency-ttl-s", "0"}, "--idempotency-ttl-s");
    const auto help = userapi::config::help_text();
    EXPECT_NE(help.find("--cache-negative-capacity"), std::string::npos);
    EXPECT_NE(help.find("--idempotency-ttl-s"), std::string::npos);
}
