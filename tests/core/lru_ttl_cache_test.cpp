#include "userapi/core/lru_ttl_cache.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace std::chrono_literals;
using userapi::core::steady_time;

namespace {

class LruTtlCache : public ::testing::Test {
protected:
    steady_time now = steady_time{} + 1h;
    userapi::core::lru_ttl_cache<int, std::string> cache{3, 60s};

    void put(int k) { cache.put(k, "v" + std::to_string(k), now); }
    bool has(int k) { return cache.get(k, now).has_value(); }
};

}  // namespace

TEST_F(LruTtlCache, GetReturnsWhatWasPut) {
    put(1);
    EXPECT_EQ(cache.get(1, now), "v1");
    EXPECT_FALSE(has(2));
}

// When full, the least recently used entry goes; a read counts as a use.
TEST_F(LruTtlCache, EvictsLeastRecentlyUsed) {
    put(1);
    put(2);
    put(3);
    EXPECT_TRUE(has(1));  // 2 is now the oldest
    put(4);
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(cache.stats().evictions, 1u);
    EXPECT_FALSE(has(2));
    EXPECT_TRUE(has(1));
    EXPECT_TRUE(has(3));
    EXPECT_TRUE(has(4));
}

// Putting an existing key replaces its value and makes it most recent, without eviction.
TEST_F(LruTtlCache, PutExistingKeyReplaces) {
    put(1);
    put(2);
    put(3);
    cache.put(1, "new", now);
    put(4);
    EXPECT_EQ(cache.get(1, now), "new");
    EXPECT_FALSE(has(2));
    EXPECT_EQ(cache.stats().evictions, 1u);
}

// An entry lives exactly ttl: alive one tick before, gone at the deadline.
TEST_F(LruTtlCache, TtlBoundary) {
    put(1);
    now += 60s - 1ns;
    EXPECT_TRUE(has(1));
    now += 1ns;
    EXPECT_FALSE(has(1));
    EXPECT_EQ(cache.stats().expirations, 1u);
    EXPECT_EQ(cache.size(), 0u);
}

// Reading does not extend an entry's life.
TEST_F(LruTtlCache, ReadsDoNotExtendLife) {
    put(1);
    now += 59s;
    EXPECT_TRUE(has(1));
    now += 1s;
    EXPECT_FALSE(has(1));
}

// Re-putting an entry gives it a fresh ttl.
TEST_F(LruTtlCache, PutRefreshesTtl) {
    put(1);
    now += 30s;
    put(1);
    now += 45s;
    EXPECT_TRUE(has(1));
}

// The sweep removes exactly the expired entries and counts them.
TEST_F(LruTtlCache, SweepRemovesOnlyExpired) {
    put(1);
    now += 20s;
    put(2);
    now += 20s;
    put(3);
    now += 25s;  // 1 is 65 s old, 2 is 45 s, 3 is 25 s
    EXPECT_EQ(cache.sweep(now), 1u);
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_EQ(cache.stats().expirations, 1u);
    now += 20s;  // 2 is 65 s old
    EXPECT_EQ(cache.sweep(now), 1u);
    EXPECT_TRUE(has(3));
    EXPECT_EQ(cache.sweep(now), 0u);
}

// A re-put entry moves to the back of the expiry order.
TEST_F(LruTtlCache, SweepFollowsRefreshedDeadlines) {
    put(1);
    put(2);
    now += 30s;
    put(1);
    now += 31s;  // 2 expired, 1 refreshed 31 s ago
    EXPECT_EQ(cache.sweep(now), 1u);
    EXPECT_TRUE(has(1));
}

// clear() empties the cache and keeps the counters.
TEST_F(LruTtlCache, ClearKeepsCounters) {
    put(1);
    put(2);
    put(3);
    put(4);
    EXPECT_EQ(cache.clear(), 3u);
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(cache.stats().evictions, 1u);
    EXPECT_FALSE(has(1));
    put(5);
    EXPECT_TRUE(has(5)) << "usable after clear";
    EXPECT_EQ(cache.sweep(now + 2min), 1u);
}

// Many entries through a small cache keep both lists consistent.
TEST_F(LruTtlCache, ChurnKeepsInvariants) {
    for (int i = 0; i < 1000; ++i) {
        put(i % 7);
        if (i % 3 == 0) has(i % 5);
        now += 1s;
    }
    EXPECT_LE(cache.size(), 3u);
    now += 2min;
    const auto held = cache.size();
    EXPECT_EQ(cache.sweep(now), held) << "everything expired goes in one sweep";
    EXPECT_EQ(cache.size(), 0u);
}

// A stale window: past its TTL an entry is found as stale (get() never returns it), and it is
// dead, swept and counted as expired, once the window has passed too.
TEST(LruTtlCacheKinds, StaleWindowAfterTtl) {
    steady_time now = steady_time{} + 1h;
    userapi::core::lru_ttl_cache<int, std::string> c{10, {{60s, 30s}}};
    c.put(1, "v1", now);
    now += 60s;
    auto h = c.find(1, now);
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->stale);
    EXPECT_FALSE(c.get(1, now)) << "get() returns fresh values only";
    EXPECT_EQ(c.sweep(now), 0u) << "still inside its stale window";
    now += 30s - 1ns;
    EXPECT_TRUE(c.find(1, now));
    now += 1ns;
    EXPECT_EQ(c.sweep(now), 1u);
    EXPECT_EQ(c.stats().expirations, 1u);
    EXPECT_EQ(c.size(), 0u);
}

// Each kind has its own lifetime; kinds share the capacity and the LRU order.
TEST(LruTtlCacheKinds, KindsHaveTheirOwnTtlAndShareCapacity) {
    steady_time now = steady_time{} + 1h;
    userapi::core::lru_ttl_cache<int, std::string> c{3, {{60s, 0s}, {5s, 0s}}};
    c.put(1, "user", now, 0);
    c.put(2, "", now, 1);
    EXPECT_EQ(c.size(0), 1u);
    EXPECT_EQ(c.size(1), 1u);
    now += 5s;
    EXPECT_FALSE(c.find(2, now)) << "the short-lived kind expired";
    EXPECT_TRUE(c.find(1, now));
    c.put(3, "", now, 1);
    c.put(4, "", now, 1);
    c.put(5, "user", now, 0);  // full: the least recently used (1) goes, whatever its kind
    EXPECT_EQ(c.size(), 3u);
    EXPECT_FALSE(c.find(1, now));
    EXPECT_EQ(c.size(0), 1u);
    EXPECT_EQ(c.size(1), 2u);
    c.put(3, "user now", now, 0);  // a kind can change on put
    EXPECT_EQ(c.size(0), 2u);
    now += 5s;
    EXPECT_EQ(c.sweep(now), 1u) << "only entry 4 was negative and short-lived";
    EXPECT_TRUE(c.erase(5));
    EXPECT_FALSE(c.erase(5));
    EXPECT_EQ(c.size(), 1u);
}
