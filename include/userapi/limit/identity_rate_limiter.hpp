// One token bucket per authenticated identity ("key:ID", "jwt:ISS:SUB"), in a bounded table:
// the twin of local_rate_limiter for names instead of addresses, with each identity's own
// policy (an API key's rate_limit, or the identities' default), given with every request.
//
// Thread-safe the same way: shards by name hash, each guarded by its own mutex, buckets in
// recency order; buckets full again hold no state and reclaim_idle() drops them; a full table
// never hands out new tokens (a newcomer takes the place of a full bucket, else shares the
// shard's overflow bucket).
#pragma once

#include <array>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "userapi/core/clock.hpp"
#include "userapi/core/token_bucket.hpp"

namespace userapi::limit {

class identity_rate_limiter {
public:
    identity_rate_limiter(const core::clock& clock, std::size_t max_identities);

    // Takes a token from `identity`'s bucket under `policy` (a new identity starts full). Looking
    // up a known identity allocates nothing.
    core::bucket_state acquire(std::string_view identity, const core::bucket_policy& policy);

    std::size_t reclaim_idle();
    std::size_t size() const;

private:
    static constexpr std::size_t kShards = 16;
    static constexpr std::size_t kEvictionScan = 32;
    struct entry {
        std::string name;
        core::bucket_policy policy;  // the last one it was charged under
        core::token_bucket bucket;
    };
    struct shard {
        mutable std::mutex mu;
        std::optional<core::token_bucket> overflow;  // guarded by mu
        std::list<entry> lru;                        // guarded by mu; most recently used first
        // Keys are views of the entries' own names (list nodes never move). Guarded by mu.
        std::unordered_map<std::string_view, std::list<entry>::iterator> index;
    };
    bool make_room(shard& s, core::steady_time now);  // with s.mu held

    const core::clock& clock_;
    const std::size_t per_shard_;
    std::array<shard, kShards> shards_;
};

}  // namespace userapi::limit
