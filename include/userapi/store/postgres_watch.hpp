// Keeps this instance's cache coherent with what other instances commit to a shared PostgreSQL
// store. One connection LISTENs on the store's channel: every write sends NOTIFY with the
// user's id, version and kind (and "*" for DELETE /cache) inside its transaction, so the
// notification arrives once the write has committed (notification.hpp).
//
// The loss of that connection is noticed from its socket at once (the server's FATAL, an end
// of file, a reset); a store that stops answering is noticed by a heartbeat: a check every
// 500 ms that must be answered within 1250 ms, so a silent store is noticed within 2 s (7.4's
// /readyz follows healthy()). Then `listening(false)` is called (the service reads from the
// store, not the cache) and the watch reconnects, backing off from 100 ms to 5 s; once it
// listens again, `listening(true)` (the service starts from an empty cache).
//
// Runs on its own thread and io_context; connecting is asynchronous too (bounded by the
// operation timeout), so stop() never waits on the store. Thread-safe: the pid set is guarded
// by mu_, the counters are atomics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include "userapi/store/notification.hpp"

namespace userapi::store {

class postgres_watch {
public:
    struct events {
        std::function<void(const notification&)> changed;  // another instance committed a write to a user
        std::function<void()> cleared;                     // another instance emptied its cache: empty ours
        std::function<void(bool)> listening;               // the channel was gained (true) or lost (false)
    };
    struct stats {
        std::uint64_t notifications = 0;  // from other instances
        std::uint64_t reconnects = 0;
        std::uint64_t lag_count = 0;                 // notifications whose commit time was known
        double lag_sum_seconds = 0;                  // commit to arrival, summed
        std::array<std::uint64_t, 8> lag_buckets{};  // see kLagBuckets
    };
    static constexpr std::array<double, 8> kLagBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25};

    postgres_watch(std::string conninfo, events e,
                   std::chrono::milliseconds operation_timeout = std::chrono::milliseconds(5000));
    ~postgres_watch();
    postgres_watch(const postgres_watch&) = delete;
    postgres_watch& operator=(const postgres_watch&) = delete;

    void start();
    void stop();

    // The backend pids of this instance's own connections: their notifications are not news.
    void own_pid(int old_pid, int new_pid);

    // Listening, and the store answered a check within the last 2 s.
    bool healthy() const;
    stats snapshot() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace userapi::store
