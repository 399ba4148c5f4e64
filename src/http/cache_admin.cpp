#include "userapi/http/cache_admin.hpp"

#include <nlohmann/json.hpp>

#include "userapi/http/await_reply.hpp"
#include "userapi/http/problem.hpp"

namespace userapi::http {
namespace {

using field = bhttp::field;

// Time depends only on the length of `given`, never on where the two differ.
bool constant_time_equal(std::string_view expected, std::string_view given) {
    unsigned char diff = expected.size() != given.size() ? 1 : 0;
    for (std::size_t i = 0; i < given.size(); ++i)
        diff |= static_cast<unsigned char>((i < expected.size() ? expected[i] : 0) ^ given[i]);
    return diff == 0;
}

// "Bearer" 1*SP token (RFC 6750 section 2.1; the scheme is case-insensitive). The token, or
// nullopt when the credentials are not of that form.
std::optional<std::string_view> bearer_token(std::string_view value) {
    if (value.size() < 7 || !boost::beast::iequals(value.substr(0, 6), "Bearer") || value[6] != ' ')
        return std::nullopt;
    auto token = value.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    if (token.empty()) return std::nullopt;
    return token;
}

// Whole seconds as an integer, fractions as a number.
nlohmann::ordered_json seconds(std::int64_t ms) {
    if (ms % 1000 == 0) return ms / 1000;
    return static_cast<double>(ms) / 1000.0;
}

}  // namespace

boost::asio::awaitable<void> cache_admin::clear(exchange& x) {
    auto& res = x.res;
    if (!cfg_.admin_token.empty()) {
        if (x.req.count(field::authorization) > 1) {
            set_problem(res, 400, "more than one Authorization field");
            co_return;
        }
        const auto auth = x.req.find(field::authorization);
        const auto token = bearer_token(auth == x.req.end() ? std::string_view{} : std::string_view(auth->value()));
        if (!token) {
            res.set(field::www_authenticate, "Bearer");
            set_problem(res, 401, "DELETE /cache needs Authorization: Bearer <admin token>");
            co_return;
        }
        if (!constant_time_equal(cfg_.admin_token, *token)) {
            set_problem(res, 403, "the admin token is not valid");
            co_return;
        }
    }
    const auto cleared = co_await await_reply<std::size_t>([&](auto done) { users_.clear_cache(std::move(done)); },
                                                           std::chrono::milliseconds(cfg_.request_timeout_ms));
    set_json(res, 200, core::shared_bytes(R"({"cleared":)" + std::to_string(cleared.value_or(0)) + "}"));
}

void cache_admin::status(exchange& x) {
    const auto s = users_.stats();
    const auto lookups = s.hits + s.misses;
    nlohmann::ordered_json j;
    j["cache"] = {{"size", s.cache.size},
                  {"capacity", s.cache.capacity},
                  {"hits", s.hits},
                  {"misses", s.misses},
                  {"hit_rate", lookups ? static_cast<double>(s.hits) / static_cast<double>(lookups) : 0.0},
                  {"evictions", s.cache.evictions},
                  {"expirations", s.cache.expirations},
                  {"ttl_seconds", seconds(cfg_.cache_ttl_ms)},
                  {"cleanup_interval_seconds", seconds(cfg_.cache_cleanup_interval_ms)},
                  {"negative_size", s.cache.negative_size},
                  {"negative_hits", s.negative_hits},
                  {"stale_served", s.stale_served},
                  {"refreshes", s.refreshes},
                  {"stale_ms", cfg_.cache_stale_ms},
                  {"negative_ttl_ms", cfg_.cache_negative_ttl_ms},
                  {"negative_capacity", s.cache.negative_capacity}};
    j["coalescing"] = {{"inflight", s.inflight}, {"coalesced_requests", s.coalesced}};
    j["db"] = {
        {"reads", s.reads}, {"writes", s.writes}, {"queue_depth", s.queue_depth}, {"latency_ms", cfg_.db_latency_ms}};
    j["instance"] = instance_.name;
    j["stores"] = {{"users", instance_.users_store}, {"rate_limit", instance_.rate_limit_store}};
    j["requests"] = {{"total", stats_.total()},
                     {"rate_limited", stats_.rate_limited_total()},
                     {"average_response_time_ms", stats_.average_ms()}};
    set_json(x.res, 200, core::shared_bytes(j.dump()));
}

}  // namespace userapi::http
