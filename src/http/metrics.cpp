#include "userapi/http/metrics.hpp"

#include <cstdio>

namespace userapi::http {
namespace {

constexpr const char* kMethodNames[kMethodCount] = {"GET", "HEAD", "POST", "DELETE", "OTHER"};

void append_number(std::string& out, double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    out += buf;
}

}  // namespace

void metrics::record(route r, method_label m, unsigned status, std::chrono::nanoseconds took) {
    if (status >= kStatusCount) status = 599;
    const auto idx = (static_cast<int>(r) * kMethodCount + static_cast<int>(m)) * kStatusCount + status;
    requests_[idx].fetch_add(1, std::memory_order_relaxed);
    const double seconds = std::chrono::duration<double>(took).count();
    std::size_t b = 0;
    while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
    buckets_[b].fetch_add(1, std::memory_order_relaxed);
    duration_ns_.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
}

double metrics::average_ms() const {
    const auto n = total();
    return n ? static_cast<double>(duration_ns_.load(std::memory_order_relaxed)) / 1e6 / static_cast<double>(n) : 0.0;
}

void metrics::render(std::string& out) const {
    out +=
        "# HELP http_requests_total HTTP requests answered, by method, route pattern and status code.\n"
        "# TYPE http_requests_total counter\n";
    for (int r = 0; r < kRouteCount; ++r)
        for (int m = 0; m < kMethodCount; ++m)
            for (int s = 0; s < kStatusCount; ++s) {
                const auto v = requests_[(r * kMethodCount + m) * kStatusCount + s].load(std::memory_order_relaxed);
                if (!v) continue;
                out += "http_requests_total{method=\"";
                out += kMethodNames[m];
                out += "\",route=\"";
                out += route_pattern(static_cast<route>(r));
                out += "\",code=\"" + std::to_string(s) + "\"} " + std::to_string(v) + "\n";
            }
    out +=
        "# HELP http_request_duration_seconds Time from a request's last byte to its response.\n"
        "# TYPE http_request_duration_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= kBuckets.size(); ++b) {
        cumulative += buckets_[b].load(std::memory_order_relaxed);
        out += "http_request_duration_seconds_bucket{le=\"";
        if (b < kBuckets.size())
            append_number(out, kBuckets[b]);
        else
            out += "+Inf";
        out += "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "http_request_duration_seconds_sum ";
    append_number(out, static_cast<double>(duration_ns_.load(std::memory_order_relaxed)) / 1e9);
    out += "\nhttp_request_duration_seconds_count " + std::to_string(cumulative) + "\n";
    out +=
        "# HELP userapi_rate_limited_requests_total Requests refused with 429.\n"
        "# TYPE userapi_rate_limited_requests_total counter\n"
        "userapi_rate_limited_requests_total " +
        std::to_string(rate_limited_total()) + "\n";
    out +=
        "# HELP userapi_connections_accepted_total TCP connections accepted.\n"
        "# TYPE userapi_connections_accepted_total counter\n"
        "userapi_connections_accepted_total " +
        std::to_string(connections_accepted_.load()) + "\n";
    out +=
        "# HELP userapi_connections_refused_total Connections closed at once because of --max-connections.\n"
        "# TYPE userapi_connections_refused_total counter\n"
        "userapi_connections_refused_total " +
        std::to_string(connections_refused_.load()) + "\n";
}

}  // namespace userapi::http
