// Every setting of the server, from built-in defaults, then the config file, then the
// command line (contract section 5). Loading is all-or-nothing: a bad value anywhere is an
// error naming it, and the server never starts half-configured.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace userapi::config {

struct settings {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 0;  // 0: hardware concurrency

    bool rate_limit_enabled = true;
    double rate_limit_capacity = 5;
    double rate_limit_refill_per_minute = 10;
    std::vector<std::string> trusted_proxies;  // CIDRs, validated
    int ipv6_prefix = 64;
    std::size_t max_clients = 100000;
    std::string rate_limit_store;  // "": buckets in this process; redis://HOST[:PORT][/DB]: shared
    std::int64_t rate_limit_store_timeout_ms = 50;
    std::string rate_limit_store_fallback = "local";   // local | open | closed
    bool rate_limit_store_pipelining = true;           // off: one decision in flight per connection (to measure)
    bool rate_limit_store_denial_cache = true;         // off: every refusal asks Redis (to measure)
    double rate_limit_identity_capacity = 0;           // 0: 10x rate_limit_capacity
    double rate_limit_identity_refill_per_minute = 0;  // 0: 10x rate_limit_refill_per_minute

    std::size_t cache_capacity = 10000;
    std::int64_t cache_ttl_ms = 60000;
    std::int64_t cache_cleanup_interval_ms = 10000;
    std::int64_t cache_negative_ttl_ms = 5000;   // 0: not-found results are not remembered
    std::int64_t cache_stale_ms = 0;             // 0: an expired entry is never served
    std::size_t cache_negative_capacity = 1000;  // not-founds held at most, in their own LRU; 0: none

    bool require_if_match = false;           // PATCH and DELETE /users/{id} without If-Match: 428
    std::int64_t idempotency_ttl_s = 86400;  // how long an Idempotency-Key's answer is kept

    std::string db_path = "data/userapi.db";  // or a postgresql:// / postgres:// URI
    std::int64_t db_connect_timeout_ms = 10000;
    std::size_t db_concurrency = 1;
    std::int64_t db_operation_timeout_ms = 5000;  // longest any store operation runs before it is cancelled
    std::int64_t db_read_timeout_ms = 1000;       // longest a read's waiters wait once it was sent
    std::int64_t db_latency_ms = 200;
    std::size_t db_queue_limit = 1000;
    std::size_t db_batch_reads = 1;  // cold reads of distinct ids one operation reads together
    std::int64_t seed_users = 3;

    std::size_t max_body_bytes = 16384;
    std::int64_t header_timeout_ms = 10000;
    std::int64_t idle_timeout_ms = 30000;
    std::int64_t request_timeout_ms = 30000;
    std::int64_t drain_timeout_ms = 10000;
    std::size_t max_connections = 10000;
    std::size_t max_connections_per_client = 256;  // TCP peers outside trusted_proxies, by client key

    std::string admin_token;  // empty: DELETE /cache is open

    // Credentials (contract section 9); none configured: anonymous requests may do everything.
    std::string api_keys_file;  // empty: no API keys
    std::string jwt_jwks;       // a file or an http(s):// URL; empty: no JWT
    std::string jwt_issuer;     // required with jwt_jwks
    std::string jwt_audience;   // required with jwt_jwks
    std::int64_t jwt_leeway_s = 60;
    std::int64_t jwt_jwks_refresh_s = 300;
    // What a request without credentials may do; unset: every scope while no credentials are
    // configured, none once they are. Each element may hold several scopes, blank-separated.
    std::optional<std::vector<std::string>> anonymous_scopes;
    std::string instance_name;  // empty: host:port
    std::string log_level = "info";
    std::string log_format = "text";

    unsigned effective_threads() const;
    bool credentials_configured() const { return !api_keys_file.empty() || !jwt_jwks.empty(); }
    double identity_capacity() const;
    double identity_refill_per_minute() const;
    bool uses_postgresql() const;
    // Rewrites a --data value for display (hiding its secrets); config/ cannot read a libpq
    // connection string itself, so the caller hands in the store's reader
    // (store::redact_conninfo). The default shows a PostgreSQL --data as its scheme only.
    using data_redactor = std::string (*)(const std::string&);
    // db_path as it may be shown: a SQLite path as it is, a PostgreSQL URI through `redact`.
    std::string redacted_data(data_redactor redact = nullptr) const;
    // One line for the startup log (the admin token and passwords are never printed).
    std::string summary(data_redactor redact = nullptr) const;
};

// What the command line asked for: run with these settings, or print and exit.
struct load_result {
    std::optional<settings> config;  // set: run
    int exit_code = 0;               // when not running
    std::string output;              // for stdout (help, version) when exit_code == 0, else stderr
};

// `args` excludes the program name. `env_admin_token` is USERAPI_ADMIN_TOKEN, if set.
load_result load(const std::vector<std::string>& args, const char* env_admin_token);

std::string help_text();
std::string version_text();

}  // namespace userapi::config
