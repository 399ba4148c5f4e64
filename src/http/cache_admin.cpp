#include "userapi/http/cache_admin.hpp"

#include <nlohmann/json.hpp>

#include "userapi/http/await_reply.hpp"
#include "userapi/http/problem.hpp"

namespace userapi::http {
namespace {

// Whole seconds as an integer, fractions as a number.
nlohmann::ordered_json seconds(std::int64_t ms) {
    if (ms % 1000 == 0) return ms / 1000;
    return static_cast<double>(ms) / 1000.0;
}

}  // namespace

// Who may clear was decided before (auth_gate: the admin scope, or the admin token).
boost::asio::awaitable<void> cache_admin::clear(exchange& x) {
    auto& res = x.res;
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
    j["db"] = {{"reads", s.reads},
               {"writes", s.writes},
               {"queue_depth", s.queue_depth},
               {"latency_ms", cfg_.db_latency_ms},
               {"batched_ids", s.batched_ids},
               {"batch_reads", cfg_.db_batch_reads}};
    j["instance"] = instance_.name;
    j["stores"] = {{"users", instance_.users_store}, {"rate_limit", instance_.rate_limit_store}};
    j["requests"] = {{"total", stats_.total()},
                     {"rate_limited", stats_.rate_limited_total()},
                     {"average_response_time_ms", stats_.average_ms()}};
    set_json(x.res, 200, core::shared_bytes(j.dump()));
}

}  // namespace userapi::http
