#include "userapi/limit/identity_rate_limiter.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace std::chrono_literals;
using namespace userapi;

namespace {

const core::bucket_policy kSmall{2, 1.0 / 60};
const core::bucket_policy kLarge{50, 10.0 / 60};

int allowed(limit::identity_rate_limiter& l, const std::string& who, const core::bucket_policy& p, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += l.acquire(who, p).allowed ? 1 : 0;
    return ok;
}

}  // namespace

// Each identity has its own bucket, under the policy it is charged with.
TEST(IdentityRateLimiter, BucketPerIdentityAndItsOwnPolicy) {
    core::manual_clock clock;
    limit::identity_rate_limiter l(clock, 1000);
    EXPECT_EQ(allowed(l, "key:small", kSmall, 10), 2);
    EXPECT_EQ(allowed(l, "key:large", kLarge, 100), 50);
    EXPECT_EQ(allowed(l, "jwt:https://issuer.test:alice", kSmall, 10), 2);
    clock.advance(60s);
    EXPECT_EQ(allowed(l, "key:small", kSmall, 10), 1);
    EXPECT_EQ(allowed(l, "key:large", kLarge, 100), 10);
    EXPECT_EQ(l.size(), 3u);
}

// A policy changed by a reload applies at once to the identity's bucket (never above its capacity).
TEST(IdentityRateLimiter, APolicyChangeAppliesAtOnce) {
    core::manual_clock clock;
    limit::identity_rate_limiter l(clock, 1000);
    EXPECT_EQ(allowed(l, "key:k", kLarge, 1), 1);
    EXPECT_EQ(allowed(l, "key:k", kSmall, 10), 2) << "49 tokens left, but the new capacity is 2";
}

// Bounded, and a newcomer to a full table takes no tokens from nowhere.
TEST(IdentityRateLimiter, TableIsBoundedAndFullBucketsAreReclaimed) {
    core::manual_clock clock;
    limit::identity_rate_limiter l(clock, 160);
    for (int i = 0; i < 5000; ++i) l.acquire("key:" + std::to_string(i), kSmall);
    EXPECT_LE(l.size(), 160u);
    clock.advance(10min);
    EXPECT_GT(l.reclaim_idle(), 0u);
    EXPECT_EQ(l.size(), 0u);
}

TEST(IdentityRateLimiter, NewcomersToAFullShardShareOneAllowance) {
    core::manual_clock clock;
    limit::identity_rate_limiter l(clock, 16);  // one bucket per shard
    int admitted = 0;
    for (int i = 0; i < 1000; ++i) admitted += l.acquire("key:" + std::to_string(i), {1, 1e-6}).allowed ? 1 : 0;
    // 16 shards: each admits its first identity, then one overflow allowance of 1.
    EXPECT_LE(admitted, 32);
}
