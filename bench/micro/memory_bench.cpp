// Memory: RSS taken by 1,000,000 cached users (argument "cache") or by 100,000 client buckets
// ("buckets"): VmRSS before and after filling the structure, one structure per process so
// that memory freed by one cannot be reused by the other.
#include <cstdio>
#include <fstream>
#include <string>

#include "userapi/limit/local_rate_limiter.hpp"
#include "userapi/service/user.hpp"
#include "userapi/service/user_cache.hpp"

using namespace std::chrono_literals;
using namespace userapi;

namespace {

long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string what = argc > 1 ? argv[1] : "";
    core::system_clock clock;
    const long base = rss_kib();
    if (what == "cache") {
        service::user_cache cache(clock, 1000000, 3600s);
        for (std::int64_t i = 1; i <= 1000000; ++i) {
            const auto s = std::to_string(i);
            cache.written(i, {core::shared_bytes(service::to_json({i, "User " + s, "user" + s + "@example.com"})), 1});
        }
        const long used = rss_kib() - base;
        std::printf("| 1,000,000 cached users | %.1f MB | %zu entries |\n", used / 1024.0, cache.stats().size);
    }
    if (what == "buckets") {
        limit::local_rate_limiter limiter(clock, {5, 10.0 / 60}, 100000);
        core::ip_address a = *core::parse_ip("10.0.0.0");
        for (std::uint32_t i = 0; i < 100000; ++i) {
            a.bytes[13] = static_cast<std::uint8_t>(i >> 16);
            a.bytes[14] = static_cast<std::uint8_t>(i >> 8);
            a.bytes[15] = static_cast<std::uint8_t>(i);
            limiter.acquire(a);
        }
        const long used = rss_kib() - base;
        std::printf("| 100,000 client buckets | %.1f MB | %zu buckets |\n", used / 1024.0, limiter.size());
    }
    if (what != "cache" && what != "buckets") {
        std::fprintf(stderr, "usage: memory_bench cache|buckets\n");
        return 2;
    }
    return 0;
}
