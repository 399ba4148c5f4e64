// Reads and writes of users: the cache first, then one coalesced read per id through the DB
// queue; writes through the queue, each replacing the cached entry before it is answered.
// Thread-safe: the cache and the single-flight map carry their own locks, counters are
// atomics, and the repository is touched only by DB-queue operations.
//
// Completion callbacks run on the thread that completes the work: the caller's own thread for
// cache hits and refusals, the DB queue's thread otherwise. Callers post back to their own
// executor; nothing here ever blocks waiting.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "userapi/core/single_flight.hpp"
#include "userapi/service/db_queue.hpp"
#include "userapi/service/read_watchdog.hpp"
#include "userapi/service/user_cache.hpp"
#include "userapi/service/user_repository.hpp"

namespace userapi::service {

enum class outcome {
    ok,
    not_found,
    email_taken,
    precondition_failed,  // If-Match named another version: nothing was written
    queue_full,           // the DB queue refused the operation: try later
    timed_out,            // the operation's deadline passed before it was sent: dropped unrun
    unavailable,          // the database failed; a write surely was not performed
    unknown,              // a write whose outcome cannot be known (sent, then the connection broke)
    key_mismatch,         // the Idempotency-Key was recorded with another request: nothing written
    key_in_progress,      // a request with the same Idempotency-Key is still running: nothing written
};

// Where a read's answer came from (X-Cache).
enum class source { hit, miss, coalesced, stale };

// One answer of the service.
struct reply {
    outcome status = outcome::unavailable;
    source from = source::miss;  // for reads
    cached_user user;            // the user (JSON and version) when there is one
    std::int64_t id = 0;         // the id of a created user
    std::string error;           // why the database failed, for the log only: never sent to a client
    bool replayed = false;       // the recorded outcome of an earlier request with its Idempotency-Key
};

struct page {
    outcome status = outcome::unavailable;
    std::vector<user> users;
    std::string error;
};

struct service_stats {
    cache_stats cache;
    std::uint64_t hits = 0, misses = 0;  // GET /users/{id}: answered from the cache or not
    std::uint64_t negative_hits = 0, stale_served = 0, refreshes = 0;
    std::size_t inflight = 0;
    std::uint64_t coalesced = 0;
    std::uint64_t reads = 0, writes = 0;
    std::size_t queue_depth = 0;
    std::size_t queue_capacity = 0;  // the depth past which operations are refused (503)
};

class user_service {
public:
    using callback = std::function<void(const reply&)>;
    using page_callback = std::function<void(const page&)>;

    // An operation still queued `request_timeout` after it was submitted is dropped unrun:
    // by then every request waiting for it has been answered 504.
    // `repos[slot]` is the store an operation in DB-queue slot `slot` uses (one connection
    // each); one repository serves every slot when given alone.
    user_service(user_cache& cache, db_queue& db, std::vector<user_repository*> repos, const core::clock& clock,
                 std::chrono::milliseconds request_timeout = std::chrono::hours(24));
    user_service(user_cache& cache, db_queue& db, user_repository& repo, const core::clock& clock,
                 std::chrono::milliseconds request_timeout = std::chrono::hours(24))
        : user_service(cache, db, std::vector<user_repository*>(db.concurrency(), &repo), clock, request_timeout) {}

    // The hot path: the cached entry of `id` (a user, or that there is none), never waits.
    // Counts a hit; a stale entry is counted as served stale and starts one background refresh.
    std::optional<user_cache::lookup> find_cached(std::int64_t id);
    // The two halves of find_cached(): look without counting anything, then say the entry
    // answered a request (it counts, and a stale entry starts its refresh).
    std::optional<user_cache::lookup> peek_cached(std::int64_t id);
    void served_from_cache(std::int64_t id, const user_cache::lookup& found);

    // The cache first (as find_cached), then one coalesced read: ok (hit | stale | miss |
    // coalesced) | not_found | queue_full | timed_out | unavailable. A not-found result is
    // remembered as a negative entry.
    void get(std::int64_t id, callback done);
    // A read of the store, never the cache (Cache-Control: no-cache, contract 8.3): joins only
    // a read of `id` that has not yet taken a DB-queue slot; its result refreshes the cache in
    // version order. ok (miss | coalesced) | not_found | queue_full | timed_out | unavailable.
    void get_fresh(std::int64_t id, callback done);

    // Writes. With an Idempotency-Key (contract 8.2) the key is recorded with the write in the
    // store; a replay answers the recorded outcome (replayed), key_mismatch or key_in_progress.
    // A request with a key already running on this instance is key_in_progress at once.
    // ok (the user, id) | email_taken | queue_full | timed_out | unavailable | unknown.
    void create(new_user u, callback done, std::optional<idempotency_key> key = std::nullopt);
    // ok (the user) | not_found | email_taken | precondition_failed | queue_full | timed_out |
    // unavailable | unknown.
    void update(std::int64_t id, user_patch patch, precondition pre, callback done,
                std::optional<idempotency_key> key = std::nullopt);
    // ok | not_found | precondition_failed | queue_full | timed_out | unavailable | unknown.
    void remove(std::int64_t id, precondition pre, callback done, std::optional<idempotency_key> key = std::nullopt);
    // Forgets Idempotency-Keys older than `ttl`, through the queue; `done` gets how many (0 on failure).
    void purge_keys(std::chrono::seconds ttl, std::function<void(std::size_t)> done);
    // Up to `limit` users with an id above `after`, read through the queue, not cached.
    void list(std::int64_t after, std::size_t limit, page_callback done);

    // DELETE /cache: empties this cache, then tells the instances sharing the store (through
    // the queue, so `done` hears of it after the notification went out). `done` gets how many
    // entries this instance held.
    void clear_cache(std::function<void(std::size_t)> done);

    // Another instance committed a write to `id` at `version` (a delete when `deleted`): an
    // older entry goes, no operation in flight stores anything older, and no later request
    // joins a read that may predate it. A late notification changes nothing.
    void remote_write(std::int64_t id, std::int64_t version, bool deleted);
    // The same, of unknown version (an older instance's notification): drop the entry, void
    // the operations in flight.
    void remote_write(std::int64_t id);
    // Another instance emptied its cache: empty ours.
    void remote_clear() { cache_.clear(); }
    // Whether this instance hears of other instances' writes. While it does not, reads go to
    // the store, and a cached user is served (STALE) only when the store cannot answer; when it
    // hears again, it starts from an empty cache.
    void set_coherent(bool coherent);
    bool coherent() const { return coherent_.load(std::memory_order_relaxed); }
    // Bounds how long a read's waiters wait once it was sent (8.4, --db-read-timeout-ms): past
    // `watchdog`'s timeout they are answered as if the store had failed (a user still cached,
    // STALE; otherwise 503). The read goes on, and what it finds is stored. Any store operation
    // (read or write) out that long means the store is not answering: until it ends (or a read
    // succeeds, or the watch reconnects), reads that miss the cache are answered so at once, and
    // so are those already waiting in the queue behind it. Set before use; `watchdog` outlives this service's operations.
    void bound_reads(read_watchdog& watchdog) { watchdog_ = &watchdog; }
    std::size_t sweep_cache() { return cache_.sweep(); }
    service_stats stats() const;
    const user_cache::lifetimes& cache_config() const { return cache_.config(); }

private:
    struct load_result {
        outcome status = outcome::unavailable;
        cached_user user;
        std::string error;
    };
    using flight_type = core::single_flight<std::int64_t, load_result>;

    // What a write did: its answer, and what the cache learns of `id` (nothing: nullopt).
    struct write_done {
        reply answer;
        std::int64_t id = 0;
        std::optional<cached_user> now_is;
        bool outcome_unknown = false;  // the entry of `id` goes, and what is in flight is void
    };

    // `use_cache`: a read completed since the caller's miss may answer instead (not for get_fresh).
    void start_load(const flight_type::call_ptr& call, std::int64_t id, bool use_cache = true);
    void load(const flight_type::call_ptr& call, const user_cache::ticket& ticket,
              user_repository& repo);  // on the DB queue
    // What a read that could not reach the store answers: the user still in the cache (STALE,
    // counted), or `failed` as it is.
    reply fallback(std::int64_t id, reply failed);
    // 8.4's watch on one store operation, from when it starts in its slot: past the read
    // timeout the store counts as not answering until operation_ended(), the reads still in the
    // queue are answered, and `also` runs.
    read_watchdog::handle watch_operation(std::function<void()> also = {});
    void operation_ended(const read_watchdog::handle& h);
    // db_.submit, with the operation watched.
    bool submit_watched(db_queue::operation op, db_queue::time_point deadline, db_queue::expiry expired,
                        db_queue::slot_taken on_slot = {}, bool strict = true);
    void queued(const flight_type::call_ptr& call);    // a read waits in the queue...
    void dequeued(const flight_type::call_ptr& call);  // ...no more
    // Submits a write to `id` (0: not known yet, a create); `run` does it. The cache learns its
    // result before `done` hears of it. Refusal and expiry answer `done` too.
    void submit_write(std::int64_t id, std::function<write_done(user_repository&)> run, callback done,
                      const std::optional<idempotency_key>& key);
    // Per-instance claim of an Idempotency-Key while its request runs; false: already claimed.
    bool claim_key(const std::string& k);
    void release_key(const std::string& k);

    user_cache& cache_;
    db_queue& db_;
    std::vector<user_repository*> repos_;  // by DB-queue slot; only touched by DB-queue operations
    const core::clock& clock_;             // for deadlines
    std::chrono::milliseconds request_timeout_;
    flight_type flight_;
    std::mutex keys_mu_;
    std::unordered_set<std::string> running_keys_;  // guarded by keys_mu_: scope \x1f key of keyed writes running here
    std::atomic<bool> coherent_{true};
    read_watchdog* watchdog_ = nullptr;  // set once before use
    // The store is not answering: an operation is past the read timeout and has not ended, and
    // no read has succeeded since (nor has the watch reconnected). Read without a lock.
    std::atomic<bool> silent_{false};
    std::mutex silence_mu_;
    // Operations past the read timeout and not ended; guarded by silence_mu_. Signed: the
    // timer's increment may come after the operation's own decrement.
    int overdue_ops_ = 0;
    void overdue_changed(int by);  // takes silence_mu_
    std::mutex queued_mu_;
    // Reads submitted and not yet started, by call; guarded by queued_mu_ (only with a watchdog).
    std::unordered_map<const void*, flight_type::call_ptr> queued_reads_;
    std::atomic<std::uint64_t> hits_{0}, misses_{0}, negative_hits_{0}, stale_served_{0}, refreshes_{0}, reads_{0},
        writes_{0};
};

}  // namespace userapi::service
