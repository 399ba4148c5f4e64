#include "userapi/limit/local_rate_limiter.hpp"

namespace userapi::limit {

local_rate_limiter::local_rate_limiter(const core::clock& clock, core::bucket_policy policy, std::size_t max_clients)
    : clock_(clock), policy_(policy), per_shard_(std::max<std::size_t>(1, (max_clients + kShards - 1) / kShards)) {}

core::bucket_state local_rate_limiter::acquire(const core::ip_address& client) {
    const auto now = clock_.now();
    shard& s = shards_[core::ip_address_hash{}(client) % kShards];
    std::lock_guard lock(s.mu);
    auto it = s.index.find(client);
    if (it == s.index.end()) {
        if (s.index.size() >= per_shard_ && !make_room(s, now)) {
            if (!s.overflow) s.overflow.emplace(policy_, now);
            return s.overflow->try_acquire(policy_, now);
        }
        s.lru.push_front(entry{client, core::token_bucket(policy_, now)});
        it = s.index.emplace(client, s.lru.begin()).first;
    } else if (it->second != s.lru.begin()) {
        s.lru.splice(s.lru.begin(), s.lru, it->second);
    }
    return it->second->bucket.try_acquire(policy_, now);
}

// Drops one bucket that is full again, looking from the least recently used end.
bool local_rate_limiter::make_room(shard& s, core::steady_time now) {
    std::size_t looked = 0;
    for (auto it = s.lru.end(); it != s.lru.begin() && looked < kEvictionScan; ++looked) {
        --it;
        if (it->bucket.is_full(policy_, now)) {
            s.index.erase(it->key);
            s.lru.erase(it);
            return true;
        }
    }
    return false;
}

std::size_t local_rate_limiter::reclaim_idle() {
    const auto now = clock_.now();
    std::size_t removed = 0;
    for (auto& s : shards_) {
        std::lock_guard lock(s.mu);
        for (auto it = s.lru.begin(); it != s.lru.end();) {
            if (it->bucket.is_full(policy_, now)) {
                s.index.erase(it->key);
                it = s.lru.erase(it);
                ++removed;
            } else {
                ++it;
            }
        }
    }
    return removed;
}

std::size_t local_rate_limiter::size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
        std::lock_guard lock(s.mu);
        n += s.index.size();
    }
    return n;
}

}  // namespace userapi::limit
