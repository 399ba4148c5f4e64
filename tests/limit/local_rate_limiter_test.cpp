#include "userapi/limit/local_rate_limiter.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using namespace userapi;

namespace {

core::ip_address ip(const char* s) { return *core::parse_ip(s); }

// How many of `n` quick requests from `client` pass.
int allowed(limit::local_rate_limiter& l, const core::ip_address& client, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += l.acquire(client).allowed ? 1 : 0;
    return ok;
}

}  // namespace

// Each client has its own bucket.
TEST(RateLimiter, BucketPerClient) {
    core::manual_clock clock;
    limit::local_rate_limiter l(clock, {5, 10.0 / 60}, 1000);
    EXPECT_EQ(allowed(l, ip("192.0.2.1"), 10), 5);
    EXPECT_EQ(allowed(l, ip("192.0.2.2"), 10), 5);
    clock.advance(6s);
    EXPECT_EQ(allowed(l, ip("192.0.2.1"), 10), 1);
    EXPECT_EQ(l.size(), 2u);
}

// The table never holds more than max_clients (rounded up per shard).
TEST(RateLimiter, TableIsBounded) {
    core::manual_clock clock;
    limit::local_rate_limiter l(clock, {5, 10.0 / 60}, 160);
    for (int i = 0; i < 5000; ++i) {
        core::ip_address a = ip("10.0.0.0");
        a.bytes[14] = static_cast<std::uint8_t>(i >> 8);
        a.bytes[15] = static_cast<std::uint8_t>(i);
        l.acquire(a);
    }
    EXPECT_LE(l.size(), 160u);
}

// Buckets that refilled completely are reclaimed; a client mid-way keeps its state.
TEST(RateLimiter, ReclaimsIdleBuckets) {
    core::manual_clock clock;
    limit::local_rate_limiter l(clock, {5, 10.0 / 60}, 1000);
    allowed(l, ip("192.0.2.1"), 1);
    clock.advance(3s);
    allowed(l, ip("192.0.2.2"), 5);
    clock.advance(3s);  // .1 is full again, .2 has 0.5 tokens back
    EXPECT_EQ(l.reclaim_idle(), 1u);
    EXPECT_EQ(l.size(), 1u);
    EXPECT_EQ(allowed(l, ip("192.0.2.2"), 5), 0) << "the busy client kept its empty bucket";
}

// Found by the memory benchmark: the hash's low bits ignored IPv4 addresses, so every IPv4
// client landed in one shard and the table held a sixteenth of max_clients.
TEST(RateLimiter, Ipv4ClientsSpreadOverTheWholeTable) {
    core::manual_clock clock;
    limit::local_rate_limiter l(clock, {5, 10.0 / 60}, 100000);
    core::ip_address a = ip("10.0.0.0");
    for (std::uint32_t i = 0; i < 50000; ++i) {
        a.bytes[13] = static_cast<std::uint8_t>(i >> 16);
        a.bytes[14] = static_cast<std::uint8_t>(i >> 8);
        a.bytes[15] = static_cast<std::uint8_t>(i);
        l.acquire(a);
    }
    EXPECT_EQ(l.size(), 50000u);
}

namespace {

core::ip_address nth(std::uint32_t i) {
    core::ip_address a = ip("10.0.0.0");
    a.bytes[13] = static_cast<std::uint8_t>(i >> 16);
    a.bytes[14] = static_cast<std::uint8_t>(i >> 8);
    a.bytes[15] = static_cast<std::uint8_t>(i);
    return a;
}

}  // namespace

// A full table never gives a refused client a fresh burst: a flood of newcomers cannot push
// its empty bucket out.
TEST(RateLimiter, FloodOfNewcomersDoesNotRefillARefusedClient) {
    core::manual_clock clock;
    limit::local_rate_limiter l(clock, {5, 10.0 / 60}, 1000);
    const auto victim = ip("192.0.2.7");
    EXPECT_EQ(allowed(l, victim, 6), 5);
    for (std::uint32_t i = 0; i < 5000; ++i) l.acquire(nth(i));
    EXPECT_LE(l.size(), 1008u);
    EXPECT_EQ(allowed(l, victim, 5), 0) << "the refused client got new tokens";
}

// With no bucket full again, newcomers share one overflow bucket per shard: the limit for
// them stays conservative. Once buckets refill, newcomers take their places again.
TEST(RateLimiter, NewcomersShareAnOverflowBucketUntilBucketsRefill) {
    core::manual_clock clock;
    limit::local_rate_limiter l(clock, {5, 10.0 / 60}, 16);  // one bucket per shard
    for (std::uint32_t i = 0; i < 2000; ++i) l.acquire(nth(i));
    EXPECT_EQ(l.size(), 16u);
    int admitted = 0;
    for (std::uint32_t i = 2000; i < 4000; ++i) admitted += l.acquire(nth(i)).allowed ? 1 : 0;
    EXPECT_LE(admitted, 16 * 5) << "newcomers got more than one burst per shard";
    clock.advance(31s);  // every bucket is full again
    EXPECT_TRUE(l.acquire(nth(5000)).allowed);
    EXPECT_EQ(allowed(l, nth(5000), 5), 4) << "a newcomer has its own full bucket again";
}
