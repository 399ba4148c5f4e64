// Request counters and the latency histogram. Lock-free: each thread adds to the atomics of
// its own shard (its own cache lines, so I/O threads never contend for a counter); readers
// (/metrics, /cache-status) sum the shards with relaxed loads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "userapi/http/prometheus_writer.hpp"
#include "userapi/http/router.hpp"

namespace userapi::http {

enum class method_label { get, head, post, patch, del, other };
inline constexpr int kMethodCount = 6;

// Why a request's credentials were refused (userapi_auth_failures_total{reason}).
enum class auth_failure { missing, invalid_token, insufficient_scope, invalid_request };
inline constexpr int kAuthFailureCount = 4;

class metrics {
public:
    static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};

    void record(route r, method_label m, unsigned status, std::chrono::nanoseconds took);
    void rate_limited() { mine().rate_limited.fetch_add(1, std::memory_order_relaxed); }
    void connection_opened() { mine().connections_accepted.fetch_add(1, std::memory_order_relaxed); }
    void connection_refused() { mine().connections_refused.fetch_add(1, std::memory_order_relaxed); }
    void auth_failed(auth_failure why) {
        mine().auth_failures[static_cast<int>(why)].fetch_add(1, std::memory_order_relaxed);
    }
    std::uint64_t auth_failures(auth_failure why) const;

    std::uint64_t total() const;
    std::uint64_t rate_limited_total() const;
    double average_ms() const;

    // http_requests_total, http_request_duration_seconds, rate limiting, connections, refused
    // credentials.
    void render(prometheus_writer& w) const;

private:
    // The status codes the server answers with; anything else is counted as "other".
    static constexpr std::array<unsigned, 22> kStatuses = {100, 200, 201, 204, 304, 400, 401, 403, 404, 405, 409,
                                                           412, 413, 415, 428, 429, 431, 500, 501, 503, 504, 0};
    static constexpr int kStatusCount = static_cast<int>(kStatuses.size());
    static constexpr int kShards = 8;
    using counter = std::atomic<std::uint64_t>;

    struct alignas(64) shard {
        std::array<counter, kRouteCount * kMethodCount * kStatusCount> requests{};
        std::array<counter, kBuckets.size() + 1> buckets{};  // non-cumulative; last is +Inf
        counter total{0};
        counter duration_ns{0};
        counter rate_limited{0};
        counter connections_accepted{0};
        counter connections_refused{0};
        std::array<counter, kAuthFailureCount> auth_failures{};
    };

    shard& mine();  // the calling thread's shard
    template <class F>
    std::uint64_t sum(F field) const;

    std::array<shard, kShards> shards_{};
};

}  // namespace userapi::http
