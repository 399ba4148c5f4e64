// A bounded map with least-recently-used eviction and a time to live per kind of entry.
//
// Each entry has a kind (0 or 1; the user cache keeps users as kind 0 and "no such user" as
// kind 1), and each kind a lifetime: fresh for `ttl` after its put, then stale for `stale`
// more (find() says so; get() never returns it), then dead.
//
// Invariants:
// - Every entry is on two intrusive lists: the recency list (most recently used first) and
//   its kind's expiry list (soonest to expire first). One lifetime per kind makes each expiry
//   list the order of insertion; a put of an existing key moves it to the back.
// - size() <= capacity() after every call; every kind shares the capacity and the LRU order.
// - find() and get() never return a dead entry; they remove it instead.
// - sweep() touches only dead entries, so its cost is what it removes, not the cache size.
//
// Not thread-safe: the owner serializes access (user_cache holds it under a mutex).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <unordered_map>
#include <utility>

#include "userapi/core/clock.hpp"

namespace userapi::core {

template <class Key, class Value, class Hash = std::hash<Key>>
class lru_ttl_cache {
public:
    static constexpr int kKinds = 2;

    struct lifetime {
        duration ttl;
        duration stale = duration::zero();  // how long past its TTL an entry may still be served stale
    };
    struct counters {
        std::uint64_t evictions = 0;    // removed to make room
        std::uint64_t expirations = 0;  // removed because their TTL (and stale time) passed
    };
    struct hit {
        Value value;
        bool stale = false;  // past its TTL, inside its stale window
        int kind = 0;
    };

    lru_ttl_cache(std::size_t capacity, duration ttl) : lru_ttl_cache(capacity, {lifetime{ttl}}) {}
    lru_ttl_cache(std::size_t capacity, std::initializer_list<lifetime> kinds) : capacity_(capacity) {
        int k = 0;
        for (const auto& l : kinds)
            if (k < kKinds) life_[k++] = l;
        for (int i = k; i < kKinds; ++i) life_[i] = life_[0];
        init_list(lru_);
        for (auto& e : exp_) init_list(e);
    }
    lru_ttl_cache(const lru_ttl_cache&) = delete;
    lru_ttl_cache& operator=(const lru_ttl_cache&) = delete;

    // The entry, fresh or stale, if alive at `now`; marks it most recently used.
    std::optional<hit> find(const Key& key, steady_time now) {
        auto it = map_.find(key);
        if (it == map_.end()) return std::nullopt;
        node& n = it->second;
        if (n.expires + life_[n.kind].stale <= now) {
            erase(it);
            ++counters_.expirations;
            return std::nullopt;
        }
        if (lru_.next[kLru] != &n) {  // a hot entry is already first: read it without a write
            unlink(n, lru_, kLru);
            push_front(n, lru_, kLru);
        }
        return hit{n.value, n.expires <= now, n.kind};
    }

    // The value if present and fresh at `now`; marks it most recently used.
    std::optional<Value> get(const Key& key, steady_time now) {
        auto h = find(key, now);
        if (!h || h->stale) return std::nullopt;
        return std::move(h->value);
    }

    // The value held for `key`, alive, stale or dead (not yet swept), without touching its
    // recency or removing anything. Null when there is none. Valid until the cache changes.
    const Value* peek(const Key& key) const {
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : &it->second.value;
    }

    // Inserts or replaces; the entry is fresh for its kind's TTL from `now`. Evicts the least
    // recently used entry when full.
    void put(const Key& key, Value value, steady_time now, int kind = 0) {
        auto [it, inserted] = map_.try_emplace(key);
        node& n = it->second;
        if (!inserted) {
            unlink(n, lru_, kLru);
            unlink(n, exp_[n.kind], kExp);
            --sizes_[n.kind];
        }
        n.key = &it->first;
        n.value = std::move(value);
        n.kind = kind;
        n.expires = now + life_[kind].ttl;
        ++sizes_[kind];
        push_front(n, lru_, kLru);
        push_back(n, exp_[kind], kExp);
        if (map_.size() > capacity_) {
            node* victim = lru_.prev[kLru];  // tail of the recency list
            erase(map_.find(*victim->key));
            ++counters_.evictions;
        }
    }

    // Removes `key`; false when it was not there.
    bool erase(const Key& key) {
        auto it = map_.find(key);
        if (it == map_.end()) return false;
        erase(it);
        return true;
    }

    // Removes every dead entry; returns how many.
    std::size_t sweep(steady_time now) {
        std::size_t removed = 0;
        for (int k = 0; k < kKinds; ++k) {
            node& head = exp_[k];
            while (head.next[kExp] != &head && head.next[kExp]->expires + life_[k].stale <= now) {
                erase(map_.find(*head.next[kExp]->key));
                ++removed;
            }
        }
        counters_.expirations += removed;
        return removed;
    }

    // Removes everything; counters are kept. Returns how many entries were removed.
    std::size_t clear() {
        const std::size_t n = map_.size();
        map_.clear();
        sizes_ = {};
        init_list(lru_);
        for (auto& e : exp_) init_list(e);
        return n;
    }

    std::size_t size() const { return map_.size(); }
    std::size_t size(int kind) const { return sizes_[kind]; }
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
        steady_time expires{};  // end of its fresh life
        int kind = 0;
    };
    using map_type = std::unordered_map<Key, node, Hash>;

    // A list head is a node whose links point at itself when empty.
    static void init_list(node& head) {
        for (int l = 0; l < 2; ++l) head.prev[l] = head.next[l] = &head;
    }
    static void unlink(node& n, node&, int l) {
        n.prev[l]->next[l] = n.next[l];
        n.next[l]->prev[l] = n.prev[l];
    }
    static void push_front(node& n, node& head, int l) {
        n.next[l] = head.next[l];
        n.prev[l] = &head;
        head.next[l]->prev[l] = &n;
        head.next[l] = &n;
    }
    static void push_back(node& n, node& head, int l) {
        n.prev[l] = head.prev[l];
        n.next[l] = &head;
        head.prev[l]->next[l] = &n;
        head.prev[l] = &n;
    }
    void erase(typename map_type::iterator it) {
        node& n = it->second;
        unlink(n, lru_, kLru);
        unlink(n, exp_[n.kind], kExp);
        --sizes_[n.kind];
        map_.erase(it);
    }

    std::size_t capacity_;
    std::array<lifetime, kKinds> life_{};
    map_type map_;
    node lru_;                      // head of the recency list
    std::array<node, kKinds> exp_;  // heads of the expiry lists, one per kind
    std::array<std::size_t, kKinds> sizes_{};
    counters counters_;
};

}  // namespace userapi::core
