// Reads and writes of users: the cache first, then one coalesced read per id through the
// DB queue. Thread-safe: the cache and the single-flight map carry their own locks, counters
// are atomics, and the repository is touched only by DB-queue operations.
//
// Completion callbacks run on the thread that completes the work: the caller's own thread for
// cache hits and refusals, the DB queue's thread otherwise. Callers post back to their own
// executor; nothing here ever blocks waiting.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "userapi/core/single_flight.hpp"
#include "userapi/service/db_queue.hpp"
#include "userapi/service/user_cache.hpp"
#include "userapi/service/user_repository.hpp"

namespace userapi::service {

enum class outcome {
    hit,        // found in the cache
    miss,       // read from the database by this request
    coalesced,  // answered by a read another request started
    created,
    not_found,
    email_taken,
    queue_full,   // the DB queue refused the operation: try later
    timed_out,    // the operation waited past the request timeout and was dropped unrun
    unavailable,  // the database failed
};

struct user_reply {
    outcome status = outcome::unavailable;
    user_json json;  // the user, when there is one
    std::int64_t id = 0;
    std::string error;  // why the database failed, for the log only: never sent to a client
};

struct service_stats {
    cache_stats cache;
    std::uint64_t hits = 0, misses = 0;
    std::size_t inflight = 0;
    std::uint64_t coalesced = 0;
    std::uint64_t reads = 0, writes = 0;
    std::size_t queue_depth = 0;
};

class user_service {
public:
    using callback = std::function<void(const user_reply&)>;

    // An operation still queued `request_timeout` after it was submitted is dropped unrun:
    // by then every request waiting for it has been answered 504.
    user_service(user_cache& cache, db_queue& db, user_repository& repo, const core::clock& clock,
                 std::chrono::milliseconds request_timeout = std::chrono::hours(24))
        : cache_(cache), db_(db), repo_(repo), clock_(clock), request_timeout_(request_timeout) {}

    // The cached JSON of `id`, or null: the hot path, never waits. Counts a hit when found.
    user_json find_cached(std::int64_t id);

    // hit | miss | coalesced | not_found | queue_full | timed_out | unavailable.
    void get(std::int64_t id, callback done);

    // created (then the user is cached) | email_taken | queue_full | timed_out | unavailable.
    void create(new_user u, callback done);

    std::size_t clear_cache() { return cache_.clear(); }
    std::size_t sweep_cache() { return cache_.sweep(); }
    service_stats stats() const;

private:
    struct load_result {
        outcome status;
        user_json json;
        std::string error;
    };
    using flight_type = core::single_flight<std::int64_t, load_result>;

    void load(const flight_type::call_ptr& call, std::int64_t id);  // on the DB queue

    user_cache& cache_;
    db_queue& db_;
    user_repository& repo_;     // only touched by DB-queue operations
    const core::clock& clock_;  // for deadlines
    std::chrono::milliseconds request_timeout_;
    flight_type flight_;
    std::atomic<std::uint64_t> hits_{0}, misses_{0}, reads_{0}, writes_{0};
};

}  // namespace userapi::service
