#include "userapi/limit/identity_rate_limiter.hpp"

#include <functional>

namespace userapi::limit {

identity_rate_limiter::identity_rate_limiter(const core::clock& clock, std::size_t max_identities)
    : clock_(clock), per_shard_(std::max<std::size_t>(1, (max_identities + kShards - 1) / kShards)) {}

core::bucket_state identity_rate_limiter::acquire(std::string_view identity, const core::bucket_policy& policy) {
    const auto now = clock_.now();
    shard& s = shards_[std::hash<std::string_view>{}(identity) % kShards];
    std::lock_guard lock(s.mu);
    auto it = s.index.find(identity);
    if (it == s.index.end()) {
        if (s.index.size() >= per_shard_ && !make_room(s, now)) {
            if (!s.overflow) s.overflow.emplace(policy, now);
            return s.overflow->try_acquire(policy, now);
        }
        s.lru.push_front(entry{std::string(identity), policy, core::token_bucket(policy, now)});
        it = s.index.emplace(s.lru.front().name, s.lru.begin()).first;
    } else if (it->second != s.lru.begin()) {
        s.lru.splice(s.lru.begin(), s.lru, it->second);
    }
    auto& e = *it->second;
    e.policy = policy;  // a reloaded key file may have changed it; the bucket adapts at once
    return e.bucket.try_acquire(e.policy, now);
}

bool identity_rate_limiter::make_room(shard& s, core::steady_time now) {
    std::size_t looked = 0;
    for (auto it = s.lru.end(); it != s.lru.begin() && looked < kEvictionScan; ++looked) {
        --it;
        if (it->bucket.is_full(it->policy, now)) {
            s.index.erase(it->name);
            s.lru.erase(it);
            return true;
        }
    }
    return false;
}

std::size_t identity_rate_limiter::reclaim_idle() {
    const auto now = clock_.now();
    std::size_t removed = 0;
    for (auto& s : shards_) {
        std::lock_guard lock(s.mu);
        for (auto it = s.lru.begin(); it != s.lru.end();) {
            if (it->bucket.is_full(it->policy, now)) {
                s.index.erase(it->name);
                it = s.lru.erase(it);
                ++removed;
            } else {
                ++it;
            }
        }
    }
    return removed;
}

std::size_t identity_rate_limiter::size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
        std::lock_guard lock(s.mu);
        n += s.index.size();
    }
    return n;
}

}  // namespace userapi::limit
