#include "userapi/config/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "userapi/core/ip_address.hpp"
#include "userapi/core/redis_uri.hpp"

namespace userapi::config {
namespace {

using json = nlohmann::json;

constexpr const char* kVersion = USERAPI_VERSION;  // project(VERSION) in CMakeLists.txt

enum class kind { integer, number, boolean, text, list, flag };

using value = std::variant<std::int64_t, double, bool, std::string, std::vector<std::string>>;

// One setting: its command-line name (or none), its config-file key, its type and range,
// and how it lands in `settings`. The one table both sources go through.
struct option {
    const char* cli;  // "--cache-capacity"; nullptr when only the file sets it
    const char* key;  // "cache.capacity"
    kind type;
    double min = 0, max = 0;  // for integer and number
    const char* help;
    std::function<std::string(settings&, const value&)> set;  // returns an error, or ""
};

template <class T, T settings::*M>
std::function<std::string(settings&, const value&)> store_int() {
    return [](settings& s, const value& v) {
        s.*M = static_cast<T>(std::get<std::int64_t>(v));
        return std::string();
    };
}

std::string one_of(const std::string& v, std::initializer_list<const char*> allowed) {
    std::string list;
    for (const char* a : allowed) {
        if (v == a) return {};
        list += (list.empty() ? "" : ", ") + std::string(a);
    }
    return "must be one of " + list + ", got \"" + v + "\"";
}

const std::vector<option>& options() {
    static const std::vector<option> table = {
        {"--address", "listen.address", kind::text, 0, 0, "listen address, IPv4 or IPv6 (default 127.0.0.1)",
         [](settings& s, const value& v) {
             const auto& a = std::get<std::string>(v);
             if (!core::parse_ip(a)) return "must be an IPv4 or IPv6 address, got \"" + a + "\"";
             s.address = a;
             return std::string();
         }},
        {"--port", "listen.port", kind::integer, 0, 65535, "listen port; 0 picks a free one (default 8080)",
         store_int<std::uint16_t, &settings::port>()},
        {"--threads", "threads", kind::integer, 0, 1024, "I/O threads; 0 = hardware concurrency (default 0)",
         store_int<unsigned, &settings::threads>()},
        {nullptr, "rate_limit.enabled", kind::boolean, 0, 0, "",
         [](settings& s, const value& v) {
             s.rate_limit_enabled = std::get<bool>(v);
             return std::string();
         }},
        {"--no-rate-limit", nullptr, kind::flag, 0, 0, "disable the rate limiter",
         [](settings& s, const value&) {
             s.rate_limit_enabled = false;
             return std::string();
         }},
        {"--rate-limit-capacity", "rate_limit.capacity", kind::integer, 1, 1e9, "token bucket size (default 5)",
         [](settings& s, const value& v) {
             s.rate_limit_capacity = static_cast<double>(std::get<std::int64_t>(v));
             return std::string();
         }},
        {"--rate-limit-refill-per-minute", "rate_limit.refill_per_minute", kind::number, 1e-6, 1e9,
         "tokens added per minute, may be fractional (default 10)",
         [](settings& s, const value& v) {
             s.rate_limit_refill_per_minute = std::get<double>(v);
             return std::string();
         }},
        {"--trusted-proxy", "rate_limit.trusted_proxies", kind::list, 0, 0,
         "CIDR allowed to set X-Forwarded-For; repeatable (default none)",
         [](settings& s, const value& v) {
             for (const auto& c : std::get<std::vector<std::string>>(v))
                 if (!core::parse_cidr(c)) return "\"" + c + "\" is not a CIDR such as 10.0.0.0/8 or 2001:db8::/32";
             s.trusted_proxies = std::get<std::vector<std::string>>(v);
             return std::string();
         }},
        {"--rate-limit-ipv6-prefix", "rate_limit.ipv6_prefix", kind::integer, 1, 128,
         "IPv6 clients are keyed by this prefix length (default 64)", store_int<int, &settings::ipv6_prefix>()},
        {"--rate-limit-max-clients", "rate_limit.max_clients", kind::integer, 1, 1e8,
         "most client buckets held at once (default 100000)", store_int<std::size_t, &settings::max_clients>()},
        {"--rate-limit-store", "rate_limit.store", kind::text, 0, 0,
         "redis://HOST[:PORT][/DB]: buckets shared by every instance using it (default: in this process)",
         [](settings& s, const value& v) {
             const auto& u = std::get<std::string>(v);
             if (!u.empty() && !core::parse_redis_uri(u))
                 return "must be a redis://HOST[:PORT][/DB] URI, got \"" + u + "\"";
             s.rate_limit_store = u;
             return std::string();
         }},
        {"--rate-limit-store-timeout-ms", "rate_limit.store_timeout_ms", kind::integer, 1, 60000,
         "longest wait for Redis per decision before the fallback (default 50)",
         store_int<std::int64_t, &settings::rate_limit_store_timeout_ms>()},
        {"--rate-limit-store-fallback", "rate_limit.store_fallback", kind::text, 0, 0,
         "when Redis fails: local (this instance's bucket), open (admit) or closed (503) (default local)",
         [](settings& s, const value& v) {
             const auto& f = std::get<std::string>(v);
             if (auto e = one_of(f, {"local", "open", "closed"}); !e.empty()) return e;
             s.rate_limit_store_fallback = f;
             return std::string();
         }},
        {nullptr, "rate_limit.store_pipelining", kind::boolean, 0, 0, "",
         [](settings& s, const value& v) {
             s.rate_limit_store_pipelining = std::get<bool>(v);
             return std::string();
         }},
        {"--no-rate-limit-store-pipelining", nullptr, kind::flag, 0, 0,
         "send one Redis decision at a time per connection (to measure what pipelining saves)",
         [](settings& s, const value&) {
             s.rate_limit_store_pipelining = false;
             return std::string();
         }},
        {nullptr, "rate_limit.store_denial_cache", kind::boolean, 0, 0, "",
         [](settings& s, const value& v) {
             s.rate_limit_store_denial_cache = std::get<bool>(v);
             return std::string();
         }},
        {"--no-rate-limit-denial-cache", nullptr, kind::flag, 0, 0,
         "ask Redis again for every refusal (to measure what remembering denials saves)",
         [](settings& s, const value&) {
             s.rate_limit_store_denial_cache = false;
             return std::string();
         }},
        {"--rate-limit-identity-capacity", "rate_limit.identity_capacity", kind::integer, 0, 1e9,
         "bucket size of an authenticated identity; 0 = 10x --rate-limit-capacity (default 0)",
         [](settings& s, const value& v) {
             s.rate_limit_identity_capacity = static_cast<double>(std::get<std::int64_t>(v));
             return std::string();
         }},
        {"--rate-limit-identity-refill-per-minute", "rate_limit.identity_refill_per_minute", kind::number, 0, 1e9,
         "refill of an authenticated identity's bucket; 0 = 10x --rate-limit-refill-per-minute (default 0)",
         [](settings& s, const value& v) {
             s.rate_limit_identity_refill_per_minute = std::get<double>(v);
             return std::string();
         }},
        {"--cache-capacity", "cache.capacity", kind::integer, 1, 1e8, "max cached users (default 10000)",
         store_int<std::size_t, &settings::cache_capacity>()},
        {"--cache-ttl-ms", "cache.ttl_ms", kind::integer, 1, 31536000000.0, "cache entry lifetime (default 60000)",
         store_int<std::int64_t, &settings::cache_ttl_ms>()},
        {"--cache-cleanup-interval-ms", "cache.cleanup_interval_ms", kind::integer, 1, 86400000,
         "background sweep period (default 10000)", store_int<std::int64_t, &settings::cache_cleanup_interval_ms>()},
        {"--cache-negative-ttl-ms", "cache.negative_ttl_ms", kind::integer, 0, 31536000000.0,
         "how long a not-found user is remembered; 0 = never (default 5000)",
         store_int<std::int64_t, &settings::cache_negative_ttl_ms>()},
        {"--cache-stale-ms", "cache.stale_ms", kind::integer, 0, 31536000000.0,
         "serve an expired user this long while one refresh runs, and while the database fails; 0 = off "
         "(default 0)",
         store_int<std::int64_t, &settings::cache_stale_ms>()},
        {"--cache-negative-capacity", "cache.negative_capacity", kind::integer, 0, 1e8,
         "remembered not-founds held at most, in their own LRU (they never evict a user); 0 = off (default 1000)",
         store_int<std::size_t, &settings::cache_negative_capacity>()},
        {nullptr, "users.require_if_match", kind::boolean, 0, 0, "",
         [](settings& s, const value& v) {
             s.require_if_match = std::get<bool>(v);
             return std::string();
         }},
        {"--require-if-match", nullptr, kind::flag, 0, 0, "PATCH and DELETE /users/{id} without If-Match get 428",
         [](settings& s, const value&) {
             s.require_if_match = true;
             return std::string();
         }},
        {"--idempotency-ttl-s", "users.idempotency_ttl_s", kind::integer, 1, 31536000,
         "how long an Idempotency-Key's answer is kept and replayed (default 86400)",
         store_int<std::int64_t, &settings::idempotency_ttl_s>()},
        {"--data", "db.path", kind::text, 0, 0,
         "the users: a SQLite file (created with its folder; :memory: keeps nothing) or a postgresql:// URI "
         "(default data/userapi.db)",
         [](settings& s, const value& v) {
             if (std::get<std::string>(v).empty()) return std::string("must not be empty");
             s.db_path = std::get<std::string>(v);
             return std::string();
         }},
        {"--db-connect-timeout-ms", "db.connect_timeout_ms", kind::integer, 0, 3600000,
         "how long to keep trying to reach PostgreSQL at start (default 10000)",
         store_int<std::int64_t, &settings::db_connect_timeout_ms>()},
        {"--db-concurrency", "db.concurrency", kind::integer, 1, 256,
         "database operations at once, one connection each; above 1 needs PostgreSQL (default 1)",
         store_int<std::size_t, &settings::db_concurrency>()},
        {"--db-operation-timeout-ms", "db.operation_timeout_ms", kind::integer, 1, 3600000,
         "longest any store operation may run before it is cancelled and its connection replaced (default 5000)",
         store_int<std::int64_t, &settings::db_operation_timeout_ms>()},
        {"--db-read-timeout-ms", "db.read_timeout_ms", kind::integer, 1, 3600000,
         "how long a read waits for the store once sent before a cached user is served STALE, others 503 "
         "(default 1000)",
         store_int<std::int64_t, &settings::db_read_timeout_ms>()},
        {"--db-latency-ms", "db.latency_ms", kind::integer, 0, 3600000, "cost of each database operation (default 200)",
         store_int<std::int64_t, &settings::db_latency_ms>()},
        {"--db-batch-reads", "db.batch_reads", kind::integer, 1, 1000,
         "cold reads of distinct ids one database operation may read together; 1 = one id each (default 1)",
         store_int<std::size_t, &settings::db_batch_reads>()},
        {"--db-queue-limit", "db.queue_limit", kind::integer, 0, 1e7,
         "waiting database operations before 503 (default 1000)", store_int<std::size_t, &settings::db_queue_limit>()},
        {"--seed-users", "db.seed_users", kind::integer, 0, 1e7, "users 1..N created in an empty store (default 3)",
         store_int<std::int64_t, &settings::seed_users>()},
        {"--max-body-bytes", "limits.max_body_bytes", kind::integer, 1, 67108864, "request body limit (default 16384)",
         store_int<std::size_t, &settings::max_body_bytes>()},
        {"--header-timeout-ms", "limits.header_timeout_ms", kind::integer, 1, 86400000,
         "time allowed to send a request (default 10000)", store_int<std::int64_t, &settings::header_timeout_ms>()},
        {"--idle-timeout-ms", "limits.idle_timeout_ms", kind::integer, 1, 86400000,
         "idle keep-alive connection lifetime (default 30000)", store_int<std::int64_t, &settings::idle_timeout_ms>()},
        {"--request-timeout-ms", "limits.request_timeout_ms", kind::integer, 1, 86400000,
         "longest wait for the database before 504 (default 30000)",
         store_int<std::int64_t, &settings::request_timeout_ms>()},
        {"--drain-timeout-ms", "limits.drain_timeout_ms", kind::integer, 0, 86400000,
         "longest graceful drain on SIGTERM (default 10000)", store_int<std::int64_t, &settings::drain_timeout_ms>()},
        {"--max-connections", "limits.max_connections", kind::integer, 1, 1000000,
         "open connections before new ones are refused (default 10000)",
         store_int<std::size_t, &settings::max_connections>()},
        {"--max-connections-per-client", "limits.max_connections_per_client", kind::integer, 1, 1000000,
         "open connections of one client address (not a trusted proxy) before its new ones are refused "
         "(default 256)",
         store_int<std::size_t, &settings::max_connections_per_client>()},
        {"--admin-token", "admin_token", kind::text, 0, 0,
         "token DELETE /cache requires as Authorization: Bearer (default: env USERAPI_ADMIN_TOKEN, else none)",
         [](settings& s, const value& v) {
             const auto& t = std::get<std::string>(v);
             for (unsigned char c : t)
                 if (c <= 0x20 || c >= 0x7f) return std::string("must be printable ASCII without spaces");
             s.admin_token = t;
             return std::string();
         }},
        {"--api-keys", "auth.api_keys_file", kind::text, 0, 0,
         "API key file: {\"keys\":[{\"id\",\"sha256\",\"scopes\",\"rate_limit\"}]}, reread on SIGHUP (default none)",
         [](settings& s, const value& v) {
             s.api_keys_file = std::get<std::string>(v);
             return std::string();
         }},
        {"--jwt-jwks", "auth.jwt.jwks", kind::text, 0, 0,
         "JWK Set (a file, or an http:// or https:// URL) whose keys sign accepted JWTs (default none)",
         [](settings& s, const value& v) {
             const auto& j = std::get<std::string>(v);
             if (j.rfind("://") != std::string::npos && j.rfind("http://", 0) != 0 && j.rfind("https://", 0) != 0)
                 return std::string("a URL must be http:// or https://");
             s.jwt_jwks = j;
             return std::string();
         }},
        {"--jwt-issuer", "auth.jwt.issuer", kind::text, 0, 0,
         "the iss every accepted JWT names (required with --jwt-jwks)",
         [](settings& s, const value& v) {
             s.jwt_issuer = std::get<std::string>(v);
             return std::string();
         }},
        {"--jwt-audience", "auth.jwt.audience", kind::text, 0, 0,
         "the aud every accepted JWT names or lists (required with --jwt-jwks)",
         [](settings& s, const value& v) {
             s.jwt_audience = std::get<std::string>(v);
             return std::string();
         }},
        {"--jwt-leeway-s", "auth.jwt.leeway_s", kind::integer, 0, 3600,
         "clock skew allowed for exp, nbf and iat (default 60)", store_int<std::int64_t, &settings::jwt_leeway_s>()},
        {"--jwt-jwks-refresh-s", "auth.jwt.jwks_refresh_s", kind::integer, 1, 86400,
         "how often a JWKS URL is fetched again (default 300)",
         store_int<std::int64_t, &settings::jwt_jwks_refresh_s>()},
        {"--anonymous-scopes", "auth.anonymous_scopes", kind::list, 0, 0,
         "scopes of a request without credentials, e.g. \"users:read\" (default: all while no credentials are "
         "configured, none once they are)",
         [](settings& s, const value& v) {
             const auto& words = std::get<std::vector<std::string>>(v);
             for (const auto& w : words) {
                 std::istringstream in(w);
                 for (std::string scope; in >> scope;)
                     if (scope != "users:read" && scope != "users:write" && scope != "admin")
                         return "\"" + scope + "\" is not one of users:read, users:write, admin";
             }
             s.anonymous_scopes = words;
             return std::string();
         }},
        {"--instance-name", "instance_name", kind::text, 0, 0,
         "this instance's name in /cache-status and logs (default host:port)",
         [](settings& s, const value& v) {
             const auto& n = std::get<std::string>(v);
             if (n.size() > 128) return std::string("must be at most 128 characters");
             for (unsigned char c : n)
                 if (c < 0x20 || c >= 0x7f) return std::string("must be printable ASCII");
             s.instance_name = n;
             return std::string();
         }},
        {"--log-level", "log.level", kind::text, 0, 0, "trace, debug, info, warn, error or off (default info)",
         [](settings& s, const value& v) {
             const auto& l = std::get<std::string>(v);
             if (auto e = one_of(l, {"trace", "debug", "info", "warn", "error", "off"}); !e.empty()) return e;
             s.log_level = l;
             return std::string();
         }},
        {"--log-format", "log.format", kind::text, 0, 0, "text or json (default text)",
         [](settings& s, const value& v) {
             const auto& f = std::get<std::string>(v);
             if (auto e = one_of(f, {"text", "json"}); !e.empty()) return e;
             s.log_format = f;
             return std::string();
         }},
    };
    return table;
}

struct load_error {
    std::string message;
};

const char* type_name(kind k) {
    switch (k) {
        case kind::integer:
            return "a whole number";
        case kind::number:
            return "a number";
        case kind::boolean:
            return "true or false";
        case kind::text:
            return "a string";
        case kind::list:
            return "a list of strings";
        case kind::flag:
            return "nothing";
    }
    return "";
}

std::string range_text(const option& o) {
    std::ostringstream s;
    s << "must be between " << o.min << " and " << std::fixed;
    s.precision(0);
    s << o.max;
    return s.str();
}

// Checks range and stores; throws load_error prefixed with `where`.
void apply(settings& s, const option& o, const value& v, const std::string& where) {
    std::string err;
    if (o.type == kind::integer) {
        const auto n = std::get<std::int64_t>(v);
        if (static_cast<double>(n) < o.min || static_cast<double>(n) > o.max)
            err = range_text(o) + ", got " + std::to_string(n);
    } else if (o.type == kind::number) {
        const double d = std::get<double>(v);
        if (!std::isfinite(d) || d < o.min || d > o.max) err = "must be a positive number up to 1e9";
    }
    if (err.empty()) err = o.set(s, v);
    if (!err.empty()) throw load_error{where + ": " + err};
}

value from_text(const option& o, const std::string& text, const std::string& where) {
    auto bad = [&] { return load_error{where + ": expected " + type_name(o.type) + ", got \"" + text + "\""}; };
    switch (o.type) {
        case kind::integer: {
            std::int64_t n = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) throw bad();
            return n;
        }
        case kind::number: {
            char* end = nullptr;
            const double d = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || std::isspace(static_cast<unsigned char>(text[0])))
                throw bad();
            return d;
        }
        case kind::list:
            return std::vector<std::string>{text};
        default:
            return text;
    }
}

value from_json(const option& o, const json& j, const std::string& where) {
    auto bad = [&] { return load_error{where + ": expected " + type_name(o.type) + ", got " + j.dump()}; };
    switch (o.type) {
        case kind::integer:
            if (!j.is_number_integer()) throw bad();
            if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) throw bad();
            return j.get<std::int64_t>();
        case kind::number:
            if (!j.is_number()) throw bad();
            return j.get<double>();
        case kind::boolean:
            if (!j.is_boolean()) throw bad();
            return j.get<bool>();
        case kind::text:
            if (!j.is_string()) throw bad();
            return j.get<std::string>();
        case kind::list: {
            if (!j.is_array()) throw bad();
            std::vector<std::string> out;
            for (const auto& e : j) {
                if (!e.is_string()) throw bad();
                out.push_back(e.get<std::string>());
            }
            return out;
        }
        case kind::flag:
            break;
    }
    throw bad();
}

// Walks the file's object; every leaf must be a known key.
void apply_file(settings& s, const json& j, const std::string& prefix, const std::string& file) {
    if (!j.is_object())
        throw load_error{"config file " + file + ": " + (prefix.empty() ? "top level" : prefix) + " must be an object"};
    for (const auto& [k, v] : j.items()) {
        const std::string key = prefix.empty() ? k : prefix + "." + k;
        const option* match = nullptr;
        bool is_section = false;
        for (const auto& o : options()) {
            if (!o.key) continue;
            const std::string ok = o.key;
            if (ok == key)
                match = &o;
            else if (ok.rfind(key + ".", 0) == 0)
                is_section = true;
        }
        const std::string where = "config file " + file + ": " + key;
        if (match)
            apply(s, *match, from_json(*match, v, where), where);
        else if (is_section)
            apply_file(s, v, key, file);
        else
            throw load_error{"config file " + file + ": unknown key " + key};
    }
}

void read_file(settings& s, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw load_error{"--config: cannot read " + path};
    std::stringstream buf;
    buf << in.rdbuf();
    json j;
    try {
        j = json::parse(buf.str());
    } catch (const json::parse_error& e) {
        throw load_error{"config file " + path + ": not valid JSON (error at byte " + std::to_string(e.byte) + ")"};
    }
    apply_file(s, j, "", path);
}

bool is_loopback(const std::string& address) {
    const auto a = core::parse_ip(address);
    return a && (core::parse_cidr("127.0.0.0/8")->contains(*a) || *a == *core::parse_ip("::1"));
}

// Section 9's rules across options: what JWTs need, and protected mode (9.1).
void check_credentials(const settings& s) {
    if (!s.jwt_jwks.empty() && (s.jwt_issuer.empty() || s.jwt_audience.empty()))
        throw load_error{"--jwt-jwks: needs --jwt-issuer and --jwt-audience"};
    if (s.jwt_jwks.empty() && (!s.jwt_issuer.empty() || !s.jwt_audience.empty()))
        throw load_error{"--jwt-issuer and --jwt-audience: only with --jwt-jwks"};
    if (!s.credentials_configured() && !s.anonymous_scopes && !is_loopback(s.address))
        throw load_error{"--address " + s.address +
                         " is not a loopback address and no credentials are configured (protected mode): give "
                         "--api-keys or --jwt-jwks, or --anonymous-scopes \"users:read ...\" to serve requests "
                         "without credentials on purpose"};
}

// A JWKS URL without what may be secret in it: user and password, query, fragment.
std::string jwks_for_log(const std::string& jwks) {
    const auto scheme = jwks.find("://");
    if (scheme == std::string::npos) return jwks;
    auto rest = jwks.substr(scheme + 3);
    rest = rest.substr(0, rest.find_first_of("?#"));
    if (const auto at = rest.rfind('@', rest.find('/')); at != std::string::npos) rest = rest.substr(at + 1);
    return jwks.substr(0, scheme + 3) + rest;
}

const option* find_cli(const std::string& name) {
    for (const auto& o : options())
        if (o.cli && name == o.cli) return &o;
    return nullptr;
}

}  // namespace

bool settings::uses_postgresql() const {
    return db_path.rfind("postgresql://", 0) == 0 || db_path.rfind("postgres://", 0) == 0;
}

std::string settings::redacted_data(data_redactor redact) const {
    if (!uses_postgresql()) return db_path;
    if (redact) return redact(db_path);
    return db_path.substr(0, db_path.find("://") + 3) + "(not shown)";
}

double settings::identity_capacity() const {
    return rate_limit_identity_capacity > 0 ? rate_limit_identity_capacity : 10 * rate_limit_capacity;
}

double settings::identity_refill_per_minute() const {
    return rate_limit_identity_refill_per_minute > 0 ? rate_limit_identity_refill_per_minute
                                                     : 10 * rate_limit_refill_per_minute;
}

unsigned settings::effective_threads() const {
    if (threads) return threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? hw : 1;
}

std::string settings::summary(data_redactor redact) const {
    std::ostringstream s;
    s << "address=" << address << " port=" << port << " threads=" << effective_threads()
      << " rate_limit=" << (rate_limit_enabled ? "on" : "off") << " capacity=" << rate_limit_capacity
      << " refill_per_minute=" << rate_limit_refill_per_minute << " trusted_proxies=" << trusted_proxies.size()
      << " ipv6_prefix=" << ipv6_prefix << " max_clients=" << max_clients << " cache_capacity=" << cache_capacity
      << " cache_ttl_ms=" << cache_ttl_ms << " cleanup_interval_ms=" << cache_cleanup_interval_ms
      << " negative_ttl_ms=" << cache_negative_ttl_ms << " negative_capacity=" << cache_negative_capacity
      << " stale_ms=" << cache_stale_ms << " idempotency_ttl_s=" << idempotency_ttl_s
      << " require_if_match=" << (require_if_match ? "on" : "off") << " data=" << redacted_data(redact)
      << " db_concurrency=" << db_concurrency << " db_latency_ms=" << db_latency_ms
      << " db_operation_timeout_ms=" << db_operation_timeout_ms << " db_read_timeout_ms=" << db_read_timeout_ms
      << " rate_limit_store=" << (rate_limit_store.empty() ? "local" : rate_limit_store)
      << " rate_limit_store_fallback=" << rate_limit_store_fallback << " db_queue_limit=" << db_queue_limit
      << " db_batch_reads=" << db_batch_reads << " seed_users=" << seed_users << " max_body_bytes=" << max_body_bytes
      << " header_timeout_ms=" << header_timeout_ms << " idle_timeout_ms=" << idle_timeout_ms
      << " request_timeout_ms=" << request_timeout_ms << " drain_timeout_ms=" << drain_timeout_ms
      << " max_connections=" << max_connections << " max_connections_per_client=" << max_connections_per_client
      << " admin_token=" << (admin_token.empty() ? "unset" : "set")
      << " api_keys=" << (api_keys_file.empty() ? "none" : api_keys_file)
      << " jwt_jwks=" << (jwt_jwks.empty() ? "none" : jwks_for_log(jwt_jwks))
      << " identity_capacity=" << identity_capacity() << " identity_refill_per_minute=" << identity_refill_per_minute()
      << " log_level=" << log_level << " log_format=" << log_format;
    return s.str();
}

std::string help_text() {
    std::ostringstream s;
    s << "usage: userapi [--config FILE] [options]\n"
         "       userapi export|import|migrate|backup [options]   move users between stores (each has --help)\n"
         "       userapi new-api-key ID SCOPE...   print a new API key and its --api-keys entry\n\n"
         "HTTP/JSON server for user records. Options override the config file, which overrides\n"
         "the built-in defaults. Config file keys nest as in config/userapi.json.\n\n"
         "  --config FILE  JSON config file\n";
    for (const auto& o : options()) {
        if (!o.cli) continue;
        std::string name = o.cli;
        if (o.type != kind::flag) name += o.type == kind::text || o.type == kind::list ? " VALUE" : " N";
        s << "  " << name << std::string(name.size() < 36 ? 36 - name.size() : 1, ' ') << o.help << "\n";
    }
    s << "  --help                              print this and exit\n"
         "  --version                           print the version and exit\n\n"
         "SIGHUP rereads the --api-keys file and a --jwt-jwks file (or fetches its URL); a bad file\n"
         "keeps the credentials there were.\n";
    return s.str();
}

std::string version_text() { return std::string("userapi ") + kVersion + "\n"; }

load_result load(const std::vector<std::string>& args, const char* env_admin_token) {
    load_result out;
    try {
        // Split "--name=value", find --help/--version/--config first.
        std::vector<std::pair<std::string, std::optional<std::string>>> items;
        std::optional<std::string> config_file;
        for (std::size_t i = 0; i < args.size(); ++i) {
            std::string name = args[i];
            std::optional<std::string> inline_value;
            if (const auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
                inline_value = name.substr(eq + 1);
                name.resize(eq);
            }
            if (name == "--help" || name == "-h") return {std::nullopt, 0, help_text()};
            if (name == "--version") return {std::nullopt, 0, version_text()};
            const option* o = find_cli(name);
            const bool takes_value = name == "--config" || (o && o->type != kind::flag);
            if (!o && name != "--config") throw load_error{"unknown option " + name + " (see --help)"};
            if (takes_value && !inline_value) {
                if (i + 1 >= args.size()) throw load_error{name + ": missing value"};
                inline_value = args[++i];
            }
            if (!takes_value && inline_value) throw load_error{name + ": takes no value"};
            if (name == "--config") {
                if (config_file) throw load_error{"--config: given more than once"};
                config_file = inline_value;
            } else {
                items.emplace_back(name, inline_value);
            }
        }
        settings s;
        if (config_file) read_file(s, *config_file);
        if (env_admin_token && *env_admin_token) {
            const option* o = find_cli("--admin-token");
            apply(s, *o, std::string(env_admin_token), "USERAPI_ADMIN_TOKEN");
        }
        std::set<std::string> seen;
        std::vector<std::pair<std::string, std::vector<std::string>>> lists;  // repeatable options, in order
        for (const auto& [name, text] : items) {
            const option* o = find_cli(name);
            if (o->type == kind::list) {
                const std::string& option_name = name;  // clang 14 cannot capture a structured binding
                auto it =
                    std::find_if(lists.begin(), lists.end(), [&](const auto& l) { return l.first == option_name; });
                if (it == lists.end()) it = lists.insert(lists.end(), {name, {}});
                it->second.push_back(*text);
                continue;
            }
            if (!seen.insert(name).second) throw load_error{name + ": given more than once"};
            // An empty token would silently leave DELETE /cache open, whatever the environment says.
            if (name == "--admin-token" && text->empty())
                throw load_error{"--admin-token: must not be empty (leave the option out for no token)"};
            apply(s, *o, o->type == kind::flag ? value{true} : from_text(*o, *text, name), name);
        }
        for (const auto& [name, values] : lists) apply(s, *find_cli(name), values, name);
        check_credentials(s);
        if (s.db_concurrency > 1 && !s.uses_postgresql())
            throw load_error{
                "--db-concurrency: above 1 needs a PostgreSQL store (--data postgresql://...); "
                "SQLite takes one writer"};
        out.config = std::move(s);
    } catch (const load_error& e) {
        return {std::nullopt, 2, "userapi: " + e.message + "\n"};
    }
    return out;
}

}  // namespace userapi::config
