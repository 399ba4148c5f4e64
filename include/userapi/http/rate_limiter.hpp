// One token bucket per client key, in a bounded table.
//
// Thread-safe: the table is split into shards by key hash, each guarded by its own mutex, so
// requests of different clients rarely contend. Each shard keeps its buckets in recency
// order; when a shard is full its least recently used bucket is dropped. Buckets that have
// refilled completely carry no state, and reclaim_idle() drops them.
#pragma once

#include <array>
#include <cstddef>
#include <list>
#include <mutex>
#include <unordered_map>

#include "userapi/core/clock.hpp"
#include "userapi/core/ip_address.hpp"
#include "userapi/core/token_bucket.hpp"

namespace userapi::http {

class rate_limiter {
public:
    rate_limiter(const core::clock& clock, core::bucket_policy policy, std::size_t max_clients);

    // Takes a token from `client`'s bucket if it has one (a new client starts full).
    core::bucket_state acquire(const core::ip_address& client);

    // Drops buckets that are full again; returns how many.
    std::size_t reclaim_idle();

    std::size_t size() const;
    const core::bucket_policy& policy() const { return policy_; }

private:
    static constexpr std::size_t kShards = 16;
    struct entry {
        core::ip_address key;
        core::token_bucket bucket;
    };
    struct shard {
        mutable std::mutex mu;
        std::list<entry> lru;  // guarded by mu; most recently used first
        std::unordered_map<core::ip_address, std::list<entry>::iterator, core::ip_address_hash> index;  // guarded by mu
    };

    const core::clock& clock_;
    const core::bucket_policy policy_;
    const std::size_t per_shard_;
    std::array<shard, kShards> shards_;
};

}  // namespace userapi::http
