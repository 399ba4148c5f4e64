// The users' cache, by id: what a read found (a user's JSON and version, or that there is no
// such user), kept coherent with writes.
//
// Entries: a user lives `ttl`, then may be served stale for `stale` more while a refresh runs;
// a negative entry ("no such user") lives `negative_ttl` (0: none are kept). They share the
// capacity and the LRU order.
//
// Coherence (contract 6.6): a read registers before it goes to the store (begin_read) and its
// result is stored only if no write to that id was recorded after that (end_read). A write
// records itself (written / invalidate) once committed, before it is answered. So a read that
// may have seen the store before a write never overwrites what the write left, however late
// it completes: a timed-out operation, a read running beside a write on another connection,
// or a read that started before another instance's notification.
//
// Thread-safe: everything is guarded by mu_. The clock is read outside the lock.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "userapi/core/clock.hpp"
#include "userapi/core/lru_ttl_cache.hpp"
#include "userapi/core/shared_bytes.hpp"

namespace userapi::service {

// What the cache holds for an id.
struct cached_user {
    core::shared_bytes json;   // the user's JSON; empty: there is no such user
    std::int64_t version = 0;  // the user's version, for the ETag
    bool exists() const { return static_cast<bool>(json); }
};

struct cache_stats {
    std::size_t size = 0;
    std::size_t negative_size = 0;
    std::size_t capacity = 0;
    std::uint64_t evictions = 0;
    std::uint64_t expirations = 0;
};

class user_cache {
public:
    struct lifetimes {
        core::duration ttl;
        core::duration negative_ttl = core::duration::zero();
        core::duration stale = core::duration::zero();
    };
    struct lookup {
        cached_user entry;
        bool stale = false;  // past its TTL, inside the stale window
    };
    // A read in flight, from begin_read to end_read.
    struct read_ticket {
        std::int64_t id = 0;
        std::uint64_t generation = 0;
    };

    user_cache(const core::clock& clock, std::size_t capacity, lifetimes l);
    user_cache(const core::clock& clock, std::size_t capacity, core::duration ttl)
        : user_cache(clock, capacity, lifetimes{ttl}) {}

    // The entry for `id`, fresh or (with a stale window) stale; positive or negative.
    std::optional<lookup> get(std::int64_t id);

    read_ticket begin_read(std::int64_t id);
    // Ends a read. `found`: what the store said (a user or no such user), stored unless a
    // write to the id was recorded since the ticket; nullopt: the read failed, store nothing.
    // Returns whether it was stored.
    bool end_read(const read_ticket& t, const std::optional<cached_user>& found);

    // A committed write: the entry becomes `now_is` (a user, or no such user after a delete).
    void written(std::int64_t id, const cached_user& now_is);
    // A committed write whose result is unknown here (another instance's): drop the entry.
    void invalidate(std::int64_t id);

    std::size_t sweep();
    std::size_t clear();
    // Empties the cache and voids every read in flight: nothing read before now is stored.
    void reset();
    cache_stats stats() const;
    const lifetimes& config() const { return life_; }

private:
    static constexpr int kUser = 0, kNotFound = 1;
    struct reads_of_id {
        std::size_t readers = 0;
        std::uint64_t last_write = 0;  // generation of the latest write recorded while they ran
    };
    void record_write(std::int64_t id);                                        // with mu_ held
    void store(std::int64_t id, const cached_user& e, core::steady_time now);  // with mu_ held

    const core::clock& clock_;
    const lifetimes life_;
    mutable std::mutex mu_;
    core::lru_ttl_cache<std::int64_t, cached_user> cache_;  // guarded by mu_
    std::unordered_map<std::int64_t, reads_of_id> reads_;   // guarded by mu_; ids with a read in flight
    std::uint64_t generation_ = 0;                          // guarded by mu_; counts writes
};

}  // namespace userapi::service
