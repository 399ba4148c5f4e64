// Token bucket with lazy refill: no timer, tokens are computed from the time of the last
// update whenever the bucket is touched. Not thread-safe: the owner (the rate limiter's
// table) serializes access. The policy is passed in so a bucket stays 16 bytes.
#pragma once

#include <cstdint>

#include "userapi/core/clock.hpp"

namespace userapi::core {

struct bucket_policy {
    double capacity = 5;  // tokens; a new bucket starts full
    double refill_per_second = 10.0 / 60;

    // Seconds to refill an empty bucket (the draft RateLimit-Policy "w").
    std::int64_t window_seconds() const;
};

// What a caller needs to answer a request: whether it may proceed, and the numbers the
// RateLimit / Retry-After headers are made of, all in whole units.
struct bucket_state {
    bool allowed = false;
    std::int64_t remaining = 0;            // whole tokens left after this request
    std::int64_t reset_seconds = 0;        // until the bucket is full again (rounded up)
    std::int64_t next_token_seconds = 0;   // until one token is available; 0 if one is
    std::int64_t retry_after_seconds = 0;  // for a refusal: >= 1 and >= next_token_seconds
};

// The state a bucket holding `tokens` (fractional, after this request's take) reports.
bucket_state state_of(const bucket_policy& p, double tokens, bool allowed);

class token_bucket {
public:
    token_bucket(const bucket_policy& p, steady_time now) : tokens_(p.capacity), last_(now) {}

    // Takes one token if there is one. A refusal costs nothing.
    bucket_state try_acquire(const bucket_policy& p, steady_time now);

    // Tokens available at `now` (fractional), without taking any.
    double tokens(const bucket_policy& p, steady_time now) const;

    // True when the bucket is full at `now`: it holds no state a new bucket would not.
    bool is_full(const bucket_policy& p, steady_time now) const { return tokens(p, now) + 1e-9 >= p.capacity; }

private:
    void refill(const bucket_policy& p, steady_time now);

    double tokens_;
    steady_time last_;  // time of the last refill; never moves backwards
};

}  // namespace userapi::core
