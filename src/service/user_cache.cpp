#include "userapi/service/user_cache.hpp"

#include <algorithm>

namespace userapi::service {

user_cache::user_cache(const core::clock& clock, std::size_t capacity, lifetimes l)
    : clock_(clock),
      life_(l),
      users_(capacity, {{l.ttl, l.stale}}),
      negatives_(l.negative_capacity, {{l.negative_ttl, core::duration::zero()}}) {}

bool user_cache::keeps_negative() const {
    return life_.negative_ttl > core::duration::zero() && life_.negative_capacity > 0;
}

std::optional<user_cache::lookup> user_cache::get(std::int64_t id) {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    if (auto h = users_.find(id, now)) return lookup{std::move(h->value), h->stale};
    if (auto h = negatives_.find(id, now)) return lookup{std::move(h->value), h->stale};
    return std::nullopt;
}

std::int64_t user_cache::known_rank(std::int64_t id) const {
    if (const auto* e = users_.peek(id)) return e->rank();
    if (const auto* e = negatives_.peek(id)) return e->rank();
    return -1;
}

void user_cache::raise_floor(std::int64_t id, std::int64_t rank) {
    if (auto it = flights_.find(id); it != flights_.end()) it->second.floor = std::max(it->second.floor, rank);
}

bool user_cache::store(std::int64_t id, const cached_user& e, core::steady_time now) {
    if (e.exists()) {
        negatives_.erase(id);
        users_.put(id, e, now);
        return true;
    }
    users_.erase(id);  // a negative answer replaces a user even when none is remembered
    if (!keeps_negative()) {
        negatives_.erase(id);
        return false;
    }
    negatives_.put(id, e, now);
    return true;
}

user_cache::ticket user_cache::begin(std::int64_t id) {
    std::lock_guard lock(mu_);
    auto& f = flights_[id];
    ++f.operations;
    std::int64_t known = std::max<std::int64_t>(known_rank(id), 0);
    if (f.floor != kVoid) known = std::max(known, f.floor);
    return {id, epoch_, known};
}

bool user_cache::end(const ticket& t, const std::optional<cached_user>& result) {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    std::int64_t floor = 0;
    if (auto it = flights_.find(t.id); it != flights_.end()) {
        floor = it->second.floor;
        if (--it->second.operations == 0) flights_.erase(it);
    }
    if (!result) return false;
    cached_user r = *result;
    // Not found, where the user was known to exist when this began: deleted since.
    if (!r.exists() && r.version == 0 && t.known > 0) r = cached_user::deleted(t.known / 2);
    const auto rank = r.rank();
    if (t.epoch != epoch_ || rank < floor) {
        // Not stored (it began before a reset, or an invalidation voided it), yet what the store
        // said is still a committed fact: nothing older may be stored after it or stay cached.
        // (A write of v2 that began before a reset must not leave v1, whose write began after
        // it, as the entry.)
        raise_floor(t.id, rank);
        if (known_rank(t.id) < rank && rank > 0) {
            users_.erase(t.id);
            negatives_.erase(t.id);
        }
        return false;
    }
    if (rank < known_rank(t.id)) return false;  // older than what is known: dropped
    raise_floor(t.id, rank);
    return store(t.id, r, now);
}

bool user_cache::written(std::int64_t id, const cached_user& now_is) {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    const auto rank = now_is.rank();
    if (auto it = flights_.find(id); it != flights_.end() && rank < it->second.floor) return false;
    if (rank < known_rank(id)) return false;
    raise_floor(id, rank);
    return store(id, now_is, now);
}

bool user_cache::heard(std::int64_t id, std::int64_t version, bool deleted) {
    const auto now = clock_.now();
    const cached_user news = deleted ? cached_user::deleted(version) : cached_user{{}, version};
    const auto rank = deleted ? news.rank() : 2 * version;
    std::lock_guard lock(mu_);
    raise_floor(id, rank);
    if (known_rank(id) >= rank) return false;  // a late notification: the cache already has as new
    if (deleted) {
        store(id, news, now);
    } else {  // a newer user than ours, whose JSON we do not have: the next read fetches it
        users_.erase(id);
        negatives_.erase(id);
    }
    return true;
}

void user_cache::invalidate(std::int64_t id) {
    std::lock_guard lock(mu_);
    raise_floor(id, kVoid);
    users_.erase(id);
    negatives_.erase(id);
}

std::size_t user_cache::sweep() {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    return users_.sweep(now) + negatives_.sweep(now);
}

void user_cache::reset() {
    std::lock_guard lock(mu_);
    ++epoch_;
    users_.clear();
    negatives_.clear();
}

std::size_t user_cache::clear() {
    std::lock_guard lock(mu_);
    return users_.clear() + negatives_.clear();
}

cache_stats user_cache::stats() const {
    std::lock_guard lock(mu_);
    return {users_.size() + negatives_.size(),
            negatives_.size(),
            users_.capacity(),
            life_.negative_capacity,
            users_.stats().evictions + negatives_.stats().evictions,
            users_.stats().expirations + negatives_.stats().expirations};
}

}  // namespace userapi::service
