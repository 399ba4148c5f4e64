// A bounded map with least-recently-used eviction and a fixed time to live.
//
// Invariants:
// - Every entry is on two intrusive lists: the recency list (most recently used first) and
//   the expiry list (soonest to expire first). The TTL is the same for every entry, so the
//   expiry list is simply the order of insertion; a put of an existing key moves it to the back.
// - size() <= capacity() after every call.
// - get() never returns an entry whose deadline has passed; it removes it instead.
// - sweep() touches only expired entries, so its cost is what it removes, not the cache size.
//
// Not thread-safe: the owner serializes access (user_cache holds it under a mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>

#include "userapi/core/clock.hpp"

namespace userapi::core {

template <class Key, class Value, class Hash = std::hash<Key>>
class lru_ttl_cache {
public:
    struct counters {
        std::uint64_t evictions = 0;    // removed to make room
        std::uint64_t expirations = 0;  // removed because their TTL passed
    };

    lru_ttl_cache(std::size_t capacity, duration ttl) : capacity_(capacity), ttl_(ttl) {
        init_list(lru_);
        init_list(exp_);
    }
    lru_ttl_cache(const lru_ttl_cache&) = delete;
    lru_ttl_cache& operator=(const lru_ttl_cache&) = delete;

    // The value if present and not expired at `now`; marks it most recently used.
    std::optional<Value> get(const Key& key, steady_time now) {
        auto it = map_.find(key);
        if (it == map_.end()) return std::nullopt;
        node& n = it->second;
        if (n.expires <= now) {
            erase(it);
            ++counters_.expirations;
            return std::nullopt;
        }
        unlink(n, lru_);
        push_front(n, lru_);
        return n.value;
    }

    // Inserts or replaces; the entry lives ttl from `now`. Evicts the least recently used
    // entry when full.
    void put(const Key& key, Value value, steady_time now) {
        auto [it, inserted] = map_.try_emplace(key);
        node& n = it->second;
        if (!inserted) {
            unlink(n, lru_);
            unlink(n, exp_);
        }
        n.key = &it->first;
        n.value = std::move(value);
        n.expires = now + ttl_;
        push_front(n, lru_);
        push_back(n, exp_);
        if (map_.size() > capacity_) {
            node* victim = lru_.prev[kLru];  // tail of the recency list
            erase(map_.find(*victim->key));
            ++counters_.evictions;
        }
    }

    // Removes every expired entry; returns how many.
    std::size_t sweep(steady_time now) {
        std::size_t removed = 0;
        while (exp_.next[kExp] != &exp_ && exp_.next[kExp]->expires <= now) {
            erase(map_.find(*exp_.next[kExp]->key));
            ++removed;
        }
        counters_.expirations += removed;
        return removed;
    }

    // Removes everything; counters are kept. Returns how many entries were removed.
    std::size_t clear() {
        const std::size_t n = map_.size();
        map_.clear();
        init_list(lru_);
        init_list(exp_);
        return n;
    }

    std::size_t size() const { return map_.size(); }
    std::size_t capacity() const { return capacity_; }
    const counters& stats() const { return counters_; }

private:
    static constexpr int kLru = 0;
    static constexpr int kExp = 1;

    // One allocation per entry: the node lives inside the map's node, whose address is
    // stable across rehashing.
    struct node {
        node* prev[2] = {nullptr, nullptr};
        node* next[2] = {nullptr, nullptr};
        const Key* key = nullptr;
        Value value{};
        steady_time expires{};
    };
    using map_type = std::unordered_map<Key, node, Hash>;

    // A list head is a node whose links point at itself when empty.
    static void init_list(node& head) {
        for (int l = 0; l < 2; ++l) head.prev[l] = head.next[l] = &head;
    }
    void unlink(node& n, node& head) {
        const int l = &head == &lru_ ? kLru : kExp;
        n.prev[l]->next[l] = n.next[l];
        n.next[l]->prev[l] = n.prev[l];
    }
    void push_front(node& n, node& head) {
        const int l = &head == &lru_ ? kLru : kExp;
        n.next[l] = head.next[l];
        n.prev[l] = &head;
        head.next[l]->prev[l] = &n;
        head.next[l] = &n;
    }
    void push_back(node& n, node& head) {
        const int l = &head == &lru_ ? kLru : kExp;
        n.prev[l] = head.prev[l];
        n.next[l] = &head;
        head.prev[l]->next[l] = &n;
        head.prev[l] = &n;
    }
    void erase(typename map_type::iterator it) {
        unlink(it->second, lru_);
        unlink(it->second, exp_);
        map_.erase(it);
    }

    std::size_t capacity_;
    duration ttl_;
    map_type map_;
    node lru_;  // head of the recency list
    node exp_;  // head of the expiry list
    counters counters_;
};

}  // namespace userapi::core
