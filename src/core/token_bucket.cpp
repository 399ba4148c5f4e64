#include "userapi/core/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace userapi::core {
namespace {

// Refills add many small floating-point amounts; a bucket within this of a whole token holds it.
constexpr double kEpsilon = 1e-9;

// Rounds a non-negative number of seconds up; tiny floating-point excesses
// (5.0000000001) do not add a whole second.
std::int64_t ceil_seconds(double s) {
    if (s <= 0) return 0;
    return static_cast<std::int64_t>(std::ceil(s - kEpsilon));
}

double elapsed_seconds(steady_time from, steady_time to) {
    if (to <= from) return 0;  // a clock that went backwards refills nothing
    return std::chrono::duration<double>(to - from).count();
}

}  // namespace

std::int64_t bucket_policy::window_seconds() const { return ceil_seconds(capacity / refill_per_second); }

double token_bucket::tokens(const bucket_policy& p, steady_time now) const {
    return std::min(p.capacity, tokens_ + elapsed_seconds(last_, now) * p.refill_per_second);
}

void token_bucket::refill(const bucket_policy& p, steady_time now) {
    tokens_ = tokens(p, now);
    last_ = std::max(last_, now);
}

bucket_state token_bucket::try_acquire(const bucket_policy& p, steady_time now) {
    refill(p, now);
    const bool allowed = tokens_ + kEpsilon >= 1.0;
    if (allowed) tokens_ = std::max(0.0, tokens_ - 1.0);
    return state_of(p, tokens_, allowed);
}

bucket_state state_of(const bucket_policy& p, double tokens, bool allowed) {
    bucket_state s;
    s.allowed = allowed;
    s.remaining = static_cast<std::int64_t>(std::floor(tokens + kEpsilon));
    s.reset_seconds = ceil_seconds((p.capacity - tokens) / p.refill_per_second);
    s.next_token_seconds = tokens + kEpsilon >= 1.0 ? 0 : ceil_seconds((1.0 - tokens) / p.refill_per_second);
    s.retry_after_seconds = std::max<std::int64_t>(1, s.next_token_seconds);
    return s;
}

}  // namespace userapi::core
