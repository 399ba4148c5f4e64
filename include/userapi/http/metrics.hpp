// Request counters and the latency histogram. Lock-free: every field is an atomic that
// request threads add to; readers (/metrics, /cache-status) take a relaxed snapshot.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "userapi/http/router.hpp"

namespace userapi::http {

enum class method_label { get, head, post, del, other };
inline constexpr int kMethodCount = 5;

class metrics {
public:
    static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};

    void record(route r, method_label m, unsigned status, std::chrono::nanoseconds took);
    void rate_limited() { rate_limited_.fetch_add(1, std::memory_order_relaxed); }
    void connection_opened() { connections_accepted_.fetch_add(1, std::memory_order_relaxed); }
    void connection_refused() { connections_refused_.fetch_add(1, std::memory_order_relaxed); }

    std::uint64_t total() const { return total_.load(std::memory_order_relaxed); }
    std::uint64_t rate_limited_total() const { return rate_limited_.load(std::memory_order_relaxed); }
    double average_ms() const;

    // Prometheus text: http_requests_total, http_request_duration_seconds, connections.
    void render(std::string& out) const;

private:
    static constexpr int kStatusCount = 600;
    using counter = std::atomic<std::uint64_t>;

    std::array<counter, kRouteCount * kMethodCount * kStatusCount> requests_{};
    std::array<counter, kBuckets.size() + 1> buckets_{};  // non-cumulative; last is +Inf
    counter total_{0};
    counter duration_ns_{0};
    counter rate_limited_{0};
    counter connections_accepted_{0};
    counter connections_refused_{0};
};

}  // namespace userapi::http
