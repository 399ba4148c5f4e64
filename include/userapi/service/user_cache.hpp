// The users' cache, by id: what the store said of each (a user's JSON at a version, a
// tombstone carrying the version a DELETE removed, or "not found" with no version known),
// kept in version order (contract 8.1).
//
// Entries: a user lives `ttl`, then may be served stale for `stale` more while a refresh runs.
// Not-founds and tombstones ("negative" entries) live `negative_ttl` in an LRU of their own of
// at most `negative_capacity` entries (8.5): they never evict a user. Either 0: none are kept.
//
// Version order. Every entry has a rank: "not found" 0 < user at v (2v) < tombstone of v
// (2v+1). A result replaces an entry only when its rank is at least the entry's (equal renews
// the TTL): a slower write on another connection, a read that started earlier or a late
// notification is dropped, never stored. An entry may be gone (evicted, expired, never kept
// because negative caching is off) while an operation on its id is in flight, so the cache
// also keeps, per id with operations in flight (begin .. end), a floor: the highest rank
// stored or heard of while they ran. A result below the floor is dropped too. Every rank
// recorded was committed before it was recorded, so an operation that began after it sees
// at least that: the floor never drops a result that is current.
//
// A "not found" result of an operation that began while the cache knew the user at version
// v is a tombstone of v: ids are never reused, so the user was deleted since.
//
// reset() (a deaf instance hears again) empties the cache and voids every operation in
// flight: nothing it read before is stored. clear() (DELETE /cache) only empties it.
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
    std::int64_t version = 0;  // the user's version; with no JSON: the version deleted, 0 unknown
    bool exists() const { return static_cast<bool>(json); }
    bool tombstone() const { return !exists() && version > 0; }
    // The version order: not found (0) < user at v (2v) < tombstone of v (2v + 1).
    std::int64_t rank() const { return exists() ? 2 * version : version > 0 ? 2 * version + 1 : 0; }
    static cached_user deleted(std::int64_t version) { return {{}, version}; }
};

struct cache_stats {
    std::size_t size = 0;           // users and negative entries
    std::size_t negative_size = 0;  // not-founds and tombstones
    std::size_t capacity = 0;       // of users
    std::size_t negative_capacity = 0;
    std::uint64_t evictions = 0;
    std::uint64_t expirations = 0;
};

class user_cache {
public:
    struct lifetimes {
        core::duration ttl;
        core::duration negative_ttl = core::duration::zero();
        core::duration stale = core::duration::zero();
        std::size_t negative_capacity = 1000;
    };
    struct lookup {
        cached_user entry;
        bool stale = false;  // past its TTL, inside the stale window
    };
    // An operation on one id in flight (a read or a write), from begin() to end().
    struct ticket {
        std::int64_t id = 0;
        std::uint64_t epoch = 0;
        std::int64_t known = 0;  // the rank the cache knew when it began
    };

    user_cache(const core::clock& clock, std::size_t capacity, lifetimes l);
    user_cache(const core::clock& clock, std::size_t capacity, core::duration ttl)
        : user_cache(clock, capacity, lifetimes{ttl}) {}

    // The entry for `id`, fresh or (with a stale window) stale; positive or negative.
    std::optional<lookup> get(std::int64_t id);

    // Before an operation on `id` goes to the store.
    ticket begin(std::int64_t id);
    // Ends it. `result`: what the store said (a user, not found, or a tombstone), stored in
    // version order; nullopt: it failed or its outcome is unknown, store nothing. Returns
    // whether it was stored.
    bool end(const ticket& t, const std::optional<cached_user>& result);

    // A committed write this instance did without a ticket (a create): stored in version order.
    bool written(std::int64_t id, const cached_user& now_is);
    // Another instance committed a write to `id` at `version` (a delete when `deleted`):
    // an older entry is dropped (or becomes the tombstone), operations in flight may store
    // nothing older. Returns whether it was news (newer than what the cache held).
    bool heard(std::int64_t id, std::int64_t version, bool deleted);
    // A write to `id` of unknown version: drop the entry, void the operations in flight.
    void invalidate(std::int64_t id);

    std::size_t sweep();
    std::size_t clear();
    // Empties the cache and voids every operation in flight: nothing read before now is stored.
    void reset();
    cache_stats stats() const;
    const lifetimes& config() const { return life_; }

private:
    static constexpr std::int64_t kVoid = INT64_MAX;  // a floor no result reaches
    struct in_flight {
        std::size_t operations = 0;
        std::int64_t floor = 0;  // highest rank recorded while they ran
    };
    bool keeps_negative() const;
    std::int64_t known_rank(std::int64_t id) const;                            // with mu_ held; -1: nothing known
    void raise_floor(std::int64_t id, std::int64_t rank);                      // with mu_ held
    bool store(std::int64_t id, const cached_user& e, core::steady_time now);  // with mu_ held

    const core::clock& clock_;
    const lifetimes life_;
    mutable std::mutex mu_;
    core::lru_ttl_cache<std::int64_t, cached_user> users_;      // guarded by mu_; users only
    core::lru_ttl_cache<std::int64_t, cached_user> negatives_;  // guarded by mu_; not-founds, tombstones
    std::unordered_map<std::int64_t, in_flight> flights_;       // guarded by mu_; ids with operations in flight
    std::uint64_t epoch_ = 0;                                   // guarded by mu_; counts reset()s
};

}  // namespace userapi::service
