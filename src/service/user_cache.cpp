#include "userapi/service/user_cache.hpp"

namespace userapi::service {

user_cache::user_cache(const core::clock& clock, std::size_t capacity, lifetimes l)
    : clock_(clock), life_(l), cache_(capacity, {{l.ttl, l.stale}, {l.negative_ttl, core::duration::zero()}}) {}

std::optional<user_cache::lookup> user_cache::get(std::int64_t id) {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    auto h = cache_.find(id, now);
    if (!h) return std::nullopt;
    return lookup{std::move(h->value), h->stale};
}

user_cache::read_ticket user_cache::begin_read(std::int64_t id) {
    std::lock_guard lock(mu_);
    ++reads_[id].readers;
    return {id, generation_};
}

bool user_cache::end_read(const read_ticket& t, const std::optional<cached_user>& found) {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    const auto it = reads_.find(t.id);
    const bool current = it == reads_.end() || it->second.last_write <= t.generation;
    if (it != reads_.end() && --it->second.readers == 0) reads_.erase(it);
    if (!found || !current) return false;
    store(t.id, *found, now);
    return true;
}

void user_cache::written(std::int64_t id, const cached_user& now_is) {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    record_write(id);
    store(id, now_is, now);
}

void user_cache::invalidate(std::int64_t id) {
    std::lock_guard lock(mu_);
    record_write(id);
    cache_.erase(id);
}

void user_cache::record_write(std::int64_t id) {
    ++generation_;
    if (auto it = reads_.find(id); it != reads_.end()) it->second.last_write = generation_;
}

void user_cache::store(std::int64_t id, const cached_user& e, core::steady_time now) {
    if (e.exists())
        cache_.put(id, e, now, kUser);
    else if (life_.negative_ttl > core::duration::zero())
        cache_.put(id, e, now, kNotFound);
    else
        cache_.erase(id);  // a negative answer replaces a user even when none is remembered
}

std::size_t user_cache::sweep() {
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    return cache_.sweep(now);
}

void user_cache::reset() {
    std::lock_guard lock(mu_);
    ++generation_;
    for (auto& [id, r] : reads_) r.last_write = generation_;
    cache_.clear();
}

std::size_t user_cache::clear() {
    std::lock_guard lock(mu_);
    return cache_.clear();
}

cache_stats user_cache::stats() const {
    std::lock_guard lock(mu_);
    return {cache_.size(), cache_.size(kNotFound), cache_.capacity(), cache_.stats().evictions,
            cache_.stats().expirations};
}

}  // namespace userapi::service
