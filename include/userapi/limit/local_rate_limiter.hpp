// One token bucket per client key, in a bounded table.
//
// Thread-safe: the table is split into shards by key hash, each guarded by its own mutex, so
// requests of different clients rarely contend. Each shard keeps its buckets in recency
// order. Buckets that have refilled completely carry no state, and reclaim_idle() drops them.
//
// A full table never hands a client new tokens: dropping a bucket that is not full would let
// its client start again with a full one. So a newcomer to a full shard takes the place of a
// bucket that is full again (among the least recently used), and when there is none it
// shares the shard's overflow bucket with every other newcomer that found no room: while the
// table is full, clients it cannot hold get one client's allowance between them.
#pragma once

#include <array>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "userapi/core/clock.hpp"
#include "userapi/core/ip_address.hpp"
#include "userapi/core/token_bucket.hpp"

namespace userapi::limit {

class local_rate_limiter {
public:
    local_rate_limiter(const core::clock& clock, core::bucket_policy policy, std::size_t max_clients);

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
    // Least recently used buckets a newcomer looks at for one that is full again.
    static constexpr std::size_t kEvictionScan = 32;
    struct shard {
        mutable std::mutex mu;
        std::optional<core::token_bucket> overflow;  // guarded by mu; made when first needed
        std::list<entry> lru;                        // guarded by mu; most recently used first
        std::unordered_map<core::ip_address, std::list<entry>::iterator, core::ip_address_hash> index;  // guarded by mu
    };

    bool make_room(shard& s, core::steady_time now);  // with s.mu held

    const core::clock& clock_;
    const core::bucket_policy policy_;
    const std::size_t per_shard_;
    std::array<shard, kShards> shards_;
};

}  // namespace userapi::limit
