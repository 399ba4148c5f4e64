// The users' JSON, cached by id: an lru_ttl_cache behind one mutex, with the clock it reads.
// Values are the serialized JSON, made once when a user enters the cache, shared by every hit.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "userapi/core/clock.hpp"
#include "userapi/core/lru_ttl_cache.hpp"
#include "userapi/core/shared_bytes.hpp"

namespace userapi::service {

using user_json = core::shared_bytes;  // empty: none

struct cache_stats {
    std::size_t size = 0;
    std::size_t capacity = 0;
    std::uint64_t evictions = 0;
    std::uint64_t expirations = 0;
};

class user_cache {
public:
    user_cache(const core::clock& clock, std::size_t capacity, core::duration ttl)
        : clock_(clock), cache_(capacity, ttl) {}

    user_json get(std::int64_t id) {
        const auto now = clock_.now();
        std::lock_guard lock(mu_);
        auto v = cache_.get(id, now);
        return v ? std::move(*v) : user_json{};
    }
    void put(std::int64_t id, user_json json) {
        const auto now = clock_.now();
        std::lock_guard lock(mu_);
        cache_.put(id, std::move(json), now);
    }
    std::size_t sweep() {
        const auto now = clock_.now();
        std::lock_guard lock(mu_);
        return cache_.sweep(now);
    }
    std::size_t clear() {
        std::lock_guard lock(mu_);
        return cache_.clear();
    }
    cache_stats stats() const {
        std::lock_guard lock(mu_);
        return {cache_.size(), cache_.capacity(), cache_.stats().evictions, cache_.stats().expirations};
    }

private:
    const core::clock& clock_;
    mutable std::mutex mu_;
    core::lru_ttl_cache<std::int64_t, user_json> cache_;  // guarded by mu_
};

}  // namespace userapi::service
