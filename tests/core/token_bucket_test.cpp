#include "userapi/core/token_bucket.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using userapi::core::bucket_policy;
using userapi::core::steady_time;
using userapi::core::token_bucket;

namespace {

const steady_time t0 = steady_time{} + 1h;
const bucket_policy defaults{5, 10.0 / 60};  // burst 5, one token every 6 s

// Takes `n` tokens at `now`; returns how many were granted.
int take(token_bucket& b, const bucket_policy& p, int n, steady_time now) {
    int granted = 0;
    for (int i = 0; i < n; ++i) granted += b.try_acquire(p, now).allowed ? 1 : 0;
    return granted;
}

}  // namespace

// A new bucket is full: exactly `capacity` requests pass at once, the next is refused.
TEST(TokenBucket, BurstOfCapacityThenRefusal) {
    token_bucket b(defaults, t0);
    std::vector<std::int64_t> remaining;
    for (int i = 0; i < 5; ++i) {
        auto s = b.try_acquire(defaults, t0);
        ASSERT_TRUE(s.allowed);
        remaining.push_back(s.remaining);
    }
    EXPECT_EQ(remaining, (std::vector<std::int64_t>{4, 3, 2, 1, 0}));
    EXPECT_FALSE(b.try_acquire(defaults, t0).allowed);
}

// Tokens come back continuously: one every 6 s at 10 per minute, never above capacity.
TEST(TokenBucket, RefillsLazilyAndCapsAtCapacity) {
    token_bucket b(defaults, t0);
    EXPECT_EQ(take(b, defaults, 5, t0), 5);
    EXPECT_FALSE(b.try_acquire(defaults, t0 + 5999ms).allowed);
    EXPECT_TRUE(b.try_acquire(defaults, t0 + 6s).allowed);
    EXPECT_EQ(take(b, defaults, 10, t0 + 1h), 5) << "an hour idle refills to capacity, not beyond";
}

// A refusal costs nothing: the next token arrives when it would have anyway.
TEST(TokenBucket, RefusalsDoNotDigDeeper) {
    token_bucket b(defaults, t0);
    take(b, defaults, 5, t0);
    for (int i = 0; i < 50; ++i) EXPECT_FALSE(b.try_acquire(defaults, t0 + 3s).allowed);
    EXPECT_TRUE(b.try_acquire(defaults, t0 + 6s).allowed);
}

// Fractional rates: 0.5 per minute is one token every 120 s.
TEST(TokenBucket, FractionalRefillRate) {
    const bucket_policy slow{1, 0.5 / 60};
    token_bucket b(slow, t0);
    EXPECT_TRUE(b.try_acquire(slow, t0).allowed);
    auto s = b.try_acquire(slow, t0 + 10s);
    EXPECT_FALSE(s.allowed);
    EXPECT_EQ(s.retry_after_seconds, 110);
    EXPECT_TRUE(b.try_acquire(slow, t0 + 120s).allowed);
    EXPECT_EQ(slow.window_seconds(), 120);
}

// Retry-After and Reset are whole seconds rounded up; Retry-After is at least 1 and never
// earlier than the next token (t).
TEST(TokenBucket, HeaderArithmetic) {
    token_bucket b(defaults, t0);
    auto first = b.try_acquire(defaults, t0);
    EXPECT_EQ(first.reset_seconds, 6) << "one token missing: 6 s to full";
    EXPECT_EQ(first.next_token_seconds, 0) << "tokens remain: t is 0";
    take(b, defaults, 4, t0);
    auto refused = b.try_acquire(defaults, t0 + 1500ms);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.remaining, 0);
    EXPECT_EQ(refused.next_token_seconds, 5) << "4.5 s rounds up to 5";
    EXPECT_EQ(refused.retry_after_seconds, 5);
    EXPECT_EQ(refused.reset_seconds, 29) << "28.5 s to refill 4.75 tokens rounds up";
    EXPECT_EQ(defaults.window_seconds(), 30);

    const bucket_policy fast{2, 1000.0 / 60};  // a token every 60 ms
    token_bucket f(fast, t0);
    take(f, fast, 2, t0);
    auto s = f.try_acquire(fast, t0);
    EXPECT_EQ(s.next_token_seconds, 1);
    EXPECT_EQ(s.retry_after_seconds, 1) << "Retry-After is never 0";
}

// A clock that goes backwards neither refills nor breaks the bucket.
TEST(TokenBucket, BackwardsClockIsClamped) {
    token_bucket b(defaults, t0);
    take(b, defaults, 5, t0);
    EXPECT_FALSE(b.try_acquire(defaults, t0 - 1h).allowed);
    EXPECT_FALSE(b.try_acquire(defaults, t0 + 5s).allowed) << "going back must not shift the refill origin";
    EXPECT_TRUE(b.try_acquire(defaults, t0 + 6s).allowed);
}

// is_full says when a bucket holds nothing a new one would not: it can be dropped.
TEST(TokenBucket, IsFullAfterCompleteRefill) {
    token_bucket b(defaults, t0);
    EXPECT_TRUE(b.is_full(defaults, t0));
    b.try_acquire(defaults, t0);
    EXPECT_FALSE(b.is_full(defaults, t0 + 5s));
    EXPECT_TRUE(b.is_full(defaults, t0 + 6s));
}
