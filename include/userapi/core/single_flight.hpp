// Coalesces concurrent loads of one key: the first caller for a key becomes the leader and
// starts the load; callers that arrive while it is in flight only wait for its outcome.
// The outcome (a value or an error, whatever Result holds) reaches every waiter exactly once.
//
// Thread-safe: all state is guarded by mu_. Waiters are called after mu_ is released, on the
// thread that calls complete(), so a waiter may join again without deadlock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace userapi::core {

template <class Key, class Result, class Hash = std::hash<Key>>
class single_flight {
public:
    // `leader` is true for the waiter of the call's leader, false for those who joined it.
    using waiter = std::function<void(const Result&, bool leader)>;

    // One load in flight. Opaque to callers: the leader passes it back to complete().
    class call {
        friend class single_flight;
        std::vector<waiter> waiters_;  // guarded by the owning single_flight's mu_
        Key key_;
        bool started_ = false;  // guarded by the owning single_flight's mu_: see started()

    public:
        explicit call(Key k) : key_(std::move(k)) {}
    };
    using call_ptr = std::shared_ptr<call>;

    struct joined {
        call_ptr leader_of;  // non-null: the caller leads and must start the load
        bool leader() const { return leader_of != nullptr; }
    };

    // Adds `w` as a waiter for `key`. When no load is in flight, the caller becomes its
    // leader: it must start the load and, whatever happens, call complete() once.
    // `started`: the new call counts as started at once (join_unstarted() never joins it).
    joined join(const Key& key, waiter w, bool started = false) {
        std::lock_guard lock(mu_);
        auto [it, inserted] = calls_.try_emplace(key);
        if (inserted) {
            it->second = std::make_shared<call>(key);
            it->second->started_ = started;
        } else
            ++coalesced_;
        it->second->waiters_.push_back(std::move(w));
        return joined{inserted ? it->second : nullptr};
    }

    // As join(), but joins only a call that has not started (see started()): a call already
    // started is detached (as forget() does) and the caller leads a fresh one. For a caller
    // that needs a load begun after it arrived (a read that must see the latest write).
    joined join_unstarted(const Key& key, waiter w) {
        std::lock_guard lock(mu_);
        auto [it, inserted] = calls_.try_emplace(key);
        const bool lead = inserted || it->second->started_;
        if (lead)
            it->second = std::make_shared<call>(key);
        else
            ++coalesced_;
        it->second->waiters_.push_back(std::move(w));
        return joined{lead ? it->second : nullptr};
    }

    // The leader says its load has begun (it took its place at the store): join_unstarted()
    // no longer joins it.
    void started(const call_ptr& c) {
        std::lock_guard lock(mu_);
        c->started_ = true;
    }

    // Starts a call for `key` with no waiter when none is in flight (a background refresh):
    // the caller leads it and must complete() it. Null when a load is already in flight.
    call_ptr lead_if_idle(const Key& key, bool started = false) {
        std::lock_guard lock(mu_);
        auto [it, inserted] = calls_.try_emplace(key);
        if (!inserted) return nullptr;
        it->second = std::make_shared<call>(key);
        it->second->started_ = started;
        return it->second;
    }

    // Detaches the call in flight for `key`, if any: its waiters still get its result, but
    // callers from now on start a fresh load (Go's Forget). A write does this once it has
    // changed what the load would return.
    void forget(const Key& key) {
        std::lock_guard lock(mu_);
        calls_.erase(key);
    }

    // Ends the call: removes it (only if the map still holds this very call) and hands the
    // result to every waiter that joined it. Later joins start a fresh load.
    void complete(const call_ptr& c, const Result& result) {
        std::vector<waiter> waiters;
        {
            std::lock_guard lock(mu_);
            auto it = calls_.find(c->key_);
            if (it != calls_.end() && it->second == c) calls_.erase(it);
            waiters.swap(c->waiters_);
        }
        for (std::size_t i = 0; i < waiters.size(); ++i) waiters[i](result, i == 0);
    }

    // Loads in flight now.
    std::size_t inflight() const {
        std::lock_guard lock(mu_);
        return calls_.size();
    }

    // Callers that joined a load someone else led, since construction.
    std::uint64_t coalesced() const {
        std::lock_guard lock(mu_);
        return coalesced_;
    }

private:
    mutable std::mutex mu_;
    std::unordered_map<Key, call_ptr, Hash> calls_;  // guarded by mu_
    std::uint64_t coalesced_ = 0;                    // guarded by mu_
};

}  // namespace userapi::core
