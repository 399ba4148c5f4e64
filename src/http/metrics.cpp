#include "userapi/http/metrics.hpp"

#include <cstdio>

namespace userapi::http {
namespace {

constexpr const char* kMethodNames[kMethodCount] = {"GET", "HEAD", "POST", "PATCH", "DELETE", "OTHER"};

}  // namespace

metrics::shard& metrics::mine() {
    static std::atomic<unsigned> next{0};
    thread_local const unsigned index = next.fetch_add(1, std::memory_order_relaxed) % kShards;
    return shards_[index];
}

template <class F>
std::uint64_t metrics::sum(F field) const {
    std::uint64_t n = 0;
    for (const auto& s : shards_) n += field(s).load(std::memory_order_relaxed);
    return n;
}

void metrics::record(route r, method_label m, unsigned status, std::chrono::nanoseconds took) {
    int st = kStatusCount - 1;
    for (int i = 0; i < kStatusCount - 1; ++i)
        if (kStatuses[i] == status) st = i;
    auto& s = mine();
    s.requests[(static_cast<int>(r) * kMethodCount + static_cast<int>(m)) * kStatusCount + st].fetch_add(
        1, std::memory_order_relaxed);
    const double seconds = std::chrono::duration<double>(took).count();
    std::size_t b = 0;
    while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
    s.buckets[b].fetch_add(1, std::memory_order_relaxed);
    s.duration_ns.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
    s.total.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t metrics::total() const {
    return sum([](const shard& s) -> const counter& { return s.total; });
}

std::uint64_t metrics::rate_limited_total() const {
    return sum([](const shard& s) -> const counter& { return s.rate_limited; });
}

std::uint64_t metrics::auth_failures(auth_failure why) const {
    const auto i = static_cast<std::size_t>(why);
    return sum([i](const shard& s) -> const counter& { return s.auth_failures[i]; });
}

double metrics::average_ms() const {
    const auto n = total();
    const auto ns = sum([](const shard& s) -> const counter& { return s.duration_ns; });
    return n ? static_cast<double>(ns) / 1e6 / static_cast<double>(n) : 0.0;
}

void metrics::render(prometheus_writer& w) const {
    w.family("http_requests_total", "counter", "HTTP requests answered, by method, route pattern and status code.");
    for (int r = 0; r < kRouteCount; ++r)
        for (int m = 0; m < kMethodCount; ++m)
            for (int st = 0; st < kStatusCount; ++st) {
                const int idx = (r * kMethodCount + m) * kStatusCount + st;
                const auto v = sum([idx](const shard& s) -> const counter& { return s.requests[idx]; });
                if (!v) continue;
                const auto code = kStatuses[st] ? std::to_string(kStatuses[st]) : std::string("other");
                w.sample("http_requests_total",
                         {{"method", kMethodNames[m]}, {"route", route_pattern(static_cast<route>(r))}, {"code", code}},
                         static_cast<double>(v));
            }
    w.family("http_request_duration_seconds", "histogram", "Time from a request's last byte to its response.");
    std::uint64_t cumulative = 0;
    char le[32];
    for (std::size_t b = 0; b <= kBuckets.size(); ++b) {
        cumulative += sum([b](const shard& s) -> const counter& { return s.buckets[b]; });
        if (b < kBuckets.size())
            std::snprintf(le, sizeof le, "%g", kBuckets[b]);
        else
            std::snprintf(le, sizeof le, "+Inf");
        w.sample("http_request_duration_seconds_bucket", {{"le", le}}, static_cast<double>(cumulative));
    }
    w.sample("http_request_duration_seconds_sum",
             static_cast<double>(sum([](const shard& s) -> const counter& { return s.duration_ns; })) / 1e9);
    w.sample("http_request_duration_seconds_count", static_cast<double>(cumulative));
    w.counter("userapi_rate_limited_requests_total", "Requests refused with 429.",
              static_cast<double>(rate_limited_total()));
    w.counter("userapi_connections_accepted_total", "TCP connections accepted.",
              static_cast<double>(sum([](const shard& s) -> const counter& { return s.connections_accepted; })));
    w.counter("userapi_connections_refused_total",
              "Connections closed at once because of --max-connections or --max-connections-per-client.",
              static_cast<double>(sum([](const shard& s) -> const counter& { return s.connections_refused; })));
    w.family("userapi_auth_failures_total", "counter",
             "Requests refused for their credentials: missing (401), invalid_token (401), insufficient_scope (403), "
             "invalid_request (400).");
    constexpr const char* kReasons[kAuthFailureCount] = {"missing", "invalid_token", "insufficient_scope",
                                                         "invalid_request"};
    for (int i = 0; i < kAuthFailureCount; ++i)
        w.sample("userapi_auth_failures_total", {{"reason", kReasons[i]}},
                 static_cast<double>(auth_failures(static_cast<auth_failure>(i))));
}

}  // namespace userapi::http
