#include "userapi/service/user_service.hpp"

#include <memory>
#include <stdexcept>
#include <unordered_map>

namespace userapi::service {
namespace {

cached_user entry_of(const user& u) { return {core::shared_bytes(to_json(u)), u.version}; }

enum class attempt { ok, failed, maybe_performed };

// Runs a store call; a failure's reason goes to `error`, for the log. A failure after the
// statement may have reached the store is maybe_performed: its outcome is unknown.
template <class F>
attempt guarded(F f, std::string& error) {
    try {
        f();
        return attempt::ok;
    } catch (const storage_error& e) {
        error = e.what();
        return e.maybe_performed() ? attempt::maybe_performed : attempt::failed;
    } catch (const std::exception& e) {
        error = e.what();
    } catch (...) {
        error = "unknown error";
    }
    return attempt::failed;
}

// The answer to a write the store refused or replayed (not `done`).
outcome outcome_of(write_status s) {
    switch (s) {
        case write_status::done:
            return outcome::ok;
        case write_status::not_found:
            return outcome::not_found;
        case write_status::email_taken:
            return outcome::email_taken;
        case write_status::precondition_failed:
            return outcome::precondition_failed;
    }
    return outcome::unavailable;
}

std::string key_name(const idempotency_key& k) { return k.scope + '\x1f' + k.key; }

}  // namespace

// A read waiting in (or batched by) the DB queue. Owned by the queue, then by the operation
// that runs it; its call and ticket are ended once, by load() or by its expiry.
struct user_service::pending_read final : db_queue::read {
    pending_read(flight_type::call_ptr c, const user_cache::ticket& t) : read(t.id), call(std::move(c)), ticket(t) {}
    flight_type::call_ptr call;
    user_cache::ticket ticket;
};

user_service::user_service(user_cache& cache, db_queue& db, std::vector<user_repository*> repos,
                           const core::clock& clock, std::chrono::milliseconds request_timeout)
    : cache_(cache), db_(db), repos_(std::move(repos)), clock_(clock), request_timeout_(request_timeout) {
    if (repos_.size() < db_.concurrency()) throw std::invalid_argument("user_service: a repository per DB-queue slot");
}

std::optional<user_cache::lookup> user_service::peek_cached(std::int64_t id) {
    if (!coherent_.load(std::memory_order_relaxed)) return std::nullopt;  // the store decides, see get()
    return cache_.get(id);
}

std::optional<user_cache::lookup> user_service::find_cached(std::int64_t id) {
    auto found = peek_cached(id);
    if (found) served_from_cache(id, *found);
    return found;
}

void user_service::served_from_cache(std::int64_t id, const user_cache::lookup& found) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    if (!found.entry.exists()) negative_hits_.fetch_add(1, std::memory_order_relaxed);
    if (found.stale) {
        stale_served_.fetch_add(1, std::memory_order_relaxed);
        // One refresh at a time, coalesced with any read of this id already in flight.
        if (auto call = flight_.lead_if_idle(id, true)) {  // it may answer from the cache: never fresh
            refreshes_.fetch_add(1, std::memory_order_relaxed);
            start_load(call, id);
        }
    }
}

void user_service::get(std::int64_t id, callback done) {
    if (auto c = find_cached(id)) {
        done({c->entry.exists() ? outcome::ok : outcome::not_found, c->stale ? source::stale : source::hit, c->entry});
        return;
    }
    misses_.fetch_add(1, std::memory_order_relaxed);
    if (silent_.load(std::memory_order_relaxed)) {
        // An operation sent to the store is past the read timeout and still out: the store is
        // not answering, and this read would only wait behind it.
        done(fallback(id, {outcome::unavailable, source::miss, {}, 0, "the store is not answering"}));
        return;
    }
    // Its leader may answer from the cache (see start_load), so a no-cache read never joins it.
    auto joined = flight_.join(
        id,
        [this, id, done = std::move(done)](const load_result& r, bool leader) {
            reply out{r.status, leader ? source::miss : source::coalesced, r.user, 0, r.error};
            const bool failed = r.status != outcome::ok && r.status != outcome::not_found;
            done(failed ? fallback(id, std::move(out)) : out);
        },
        true);
    if (joined.leader()) start_load(joined.leader_of, id);
}

reply user_service::fallback(std::int64_t id, reply failed) {
    // Cut off from other instances and from the store: what the cache still holds (within its
    // TTL or stale window) is the best answer there is. No write can commit where the store is
    // unreachable for everyone. (While this instance hears every write, a cached user never
    // gets here: it is answered from the cache.)
    if (!coherent_.load(std::memory_order_relaxed))
        if (auto c = cache_.get(id); c && c->entry.exists()) {
            stale_served_.fetch_add(1, std::memory_order_relaxed);
            return {outcome::ok, source::stale, c->entry, 0, {}};
        }
    return failed;
}

void user_service::get_fresh(std::int64_t id, callback done) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    if (silent_.load(std::memory_order_relaxed)) {  // only the store may answer, and it does not
        done({outcome::unavailable, source::miss, {}, 0, "the store is not answering"});
        return;
    }
    auto joined = flight_.join_unstarted(id, [done = std::move(done)](const load_result& r, bool leader) {
        done({r.status, leader ? source::miss : source::coalesced, r.user, 0, r.error});
    });
    if (joined.leader()) start_load(joined.leader_of, id, false);
}

void user_service::start_load(const flight_type::call_ptr& call, std::int64_t id, bool use_cache) {
    const auto ticket = cache_.begin(id);
    try {
        // A read that completed between our cache miss and the join has already filled the
        // cache (it stores before it leaves the map): look again rather than read twice.
        // (Not while deaf to other instances: then only the store may answer.)
        if (use_cache && coherent_.load(std::memory_order_relaxed)) {
            if (auto c = cache_.get(id); c && !c->stale) {
                cache_.end(ticket, std::nullopt);
                flight_.complete(call, {c->entry.exists() ? outcome::ok : outcome::not_found, c->entry, {}});
                return;
            }
        }
        const auto gone = [this, call, ticket](outcome why) {
            dequeued(call);
            cache_.end(ticket, std::nullopt);
            flight_.complete(call, {why, {}, {}});
        };
        queued(call);
        if (!db_.submit_read(
                std::make_shared<pending_read>(call, ticket),
                [this](std::size_t slot, const std::vector<db_queue::read_ptr>& reads) { load(reads, *repos_[slot]); },
                clock_.now() + request_timeout_, [gone] { gone(outcome::timed_out); },
                [this, call] { flight_.started(call); }))
            gone(outcome::queue_full);
    } catch (const std::exception& e) {
        cache_.end(ticket, std::nullopt);
        flight_.complete(call, {outcome::unavailable, {}, e.what()});
    }
}

void user_service::load(const std::vector<db_queue::read_ptr>& reads, user_repository& repo) {
    const auto call_of = [](const db_queue::read_ptr& r) { return static_cast<const pending_read&>(*r).call; };
    // Sent now, after the queue and the simulated latency: its waiters wait no longer than
    // the read timeout (8.4).
    for (const auto& r : reads) dequeued(call_of(r));
    const auto watch = watch_operation([this, reads, call_of] {
        for (const auto& r : reads)
            flight_.complete(call_of(r),
                             {outcome::unavailable, {}, "the store did not answer within --db-read-timeout-ms"});
    });
    // The distinct ids, in arrival order, and which of them each read asked for.
    std::vector<std::int64_t> ids;
    std::vector<std::size_t> slot_of(reads.size(), 0);
    if (reads.size() == 1) {
        ids.push_back(reads.front()->key());
    } else {
        std::unordered_map<std::int64_t, std::size_t> index;
        for (std::size_t i = 0; i < reads.size(); ++i) {
            const auto [it, fresh] = index.try_emplace(reads[i]->key(), ids.size());
            if (fresh) ids.push_back(reads[i]->key());
            slot_of[i] = it->second;
        }
    }
    std::vector<std::optional<user>> found;
    std::string error;
    const bool read = guarded(
                          [&] {
                              if (ids.size() == 1)
                                  found.push_back(repo.find(ids.front()));  // v1's statement
                              else
                                  found = repo.find_many(ids);
                              if (found.size() != ids.size())
                                  throw storage_error("the store answered " + std::to_string(found.size()) +
                                                      " results for " + std::to_string(ids.size()) + " ids");
                          },
                          error) == attempt::ok;
    operation_ended(watch);
    reads_.fetch_add(1, std::memory_order_relaxed);
    if (read && silent_.load(std::memory_order_relaxed)) silent_.store(false, std::memory_order_relaxed);  // it answers
    batched_ids_.fetch_add(ids.size(), std::memory_order_relaxed);
    std::vector<load_result> results(ids.size());
    for (std::size_t k = 0; k < ids.size(); ++k) {
        if (!read) {
            results[k].error = error;  // every id of a failed batch fails: 503, nothing cached
        } else {
            results[k].status = found[k] ? outcome::ok : outcome::not_found;
            if (found[k]) results[k].user = entry_of(*found[k]);
        }
    }
    for (std::size_t i = 0; i < reads.size(); ++i) {
        const auto& r = static_cast<const pending_read&>(*reads[i]);
        const auto& result = results[slot_of[i]];
        // Before complete(): no second read can slip in. A failure is never cached: the next
        // request tries again.
        cache_.end(r.ticket, read ? std::optional<cached_user>(result.user) : std::nullopt);
        flight_.complete(r.call, result);  // its waiters, unless the watchdog answered them already
    }
}

read_watchdog::handle user_service::watch_operation(std::function<void()> also) {
    if (!watchdog_) return nullptr;
    return watchdog_->arm([this, also = std::move(also)] {
        overdue_changed(+1);
        std::unordered_map<const void*, flight_type::call_ptr> waiting;
        {
            std::lock_guard lock(queued_mu_);
            waiting.swap(queued_reads_);
        }
        // Their operations still run when a slot frees (and store what they find); their
        // waiters hear now what a failed read answers.
        for (const auto& [_, call] : waiting)
            flight_.complete(call, {outcome::unavailable, {}, "the store is not answering"});
        if (also) also();
    });
}

void user_service::operation_ended(const read_watchdog::handle& h) {
    if (h && watchdog_->disarm(h)) overdue_changed(-1);
}

void user_service::overdue_changed(int by) {
    std::lock_guard lock(silence_mu_);
    overdue_ops_ += by;
    // Silent from an operation's timeout (unless its end came first) until none is left; a read
    // that succeeds in between ends it early (see load()), and an end must not bring it back.
    if (by > 0 || overdue_ops_ <= 0) silent_.store(overdue_ops_ > 0, std::memory_order_relaxed);
}

bool user_service::submit_watched(db_queue::operation op, db_queue::time_point deadline, db_queue::expiry expired,
                                  db_queue::slot_taken on_slot, bool strict) {
    return db_.submit(
        [this, op = std::move(op)](std::size_t slot) {
            const auto watch = watch_operation();
            try {
                op(slot);
            } catch (...) {
                operation_ended(watch);
                throw;
            }
            operation_ended(watch);
        },
        deadline, std::move(expired), std::move(on_slot), strict);
}

void user_service::queued(const flight_type::call_ptr& call) {
    if (!watchdog_) return;
    std::lock_guard lock(queued_mu_);
    queued_reads_.emplace(call.get(), call);
}

void user_service::dequeued(const flight_type::call_ptr& call) {
    if (!watchdog_) return;
    std::lock_guard lock(queued_mu_);
    queued_reads_.erase(call.get());
}

bool user_service::claim_key(const std::string& k) {
    std::lock_guard lock(keys_mu_);
    return running_keys_.insert(k).second;
}

void user_service::release_key(const std::string& k) {
    std::lock_guard lock(keys_mu_);
    running_keys_.erase(k);
}

void user_service::submit_write(std::int64_t id, std::function<write_done(user_repository&)> run, callback done,
                                const std::optional<idempotency_key>& key) {
    // Decided when it arrives: the same key still running here is 409 at once.
    std::string claimed;
    if (key) {
        if (!claim_key(key_name(*key))) {
            done(reply{outcome::key_in_progress});
            return;
        }
        claimed = key_name(*key);
    }
    std::optional<user_cache::ticket> ticket;
    if (id) ticket = cache_.begin(id);
    // Every path ends the ticket and releases the key exactly once, before answering.
    auto finish = std::make_shared<std::function<void(write_done)>>(
        [this, ticket, claimed, done = std::move(done)](write_done w) {
            if (ticket)
                cache_.end(*ticket, w.now_is);
            else if (w.now_is && w.id)
                cache_.written(w.id, *w.now_is);
            if (w.outcome_unknown && w.id) cache_.invalidate(w.id);
            if ((w.now_is || w.outcome_unknown) && w.id) flight_.forget(w.id);  // nobody joins a read from before it
            if (!claimed.empty()) release_key(claimed);
            done(w.answer);
        });
    auto op = [this, run = std::move(run), finish](std::size_t slot) {
        writes_.fetch_add(1, std::memory_order_relaxed);
        (*finish)(run(*repos_[slot]));
    };
    if (!submit_watched(std::move(op), clock_.now() + request_timeout_,
                        [finish] { (*finish)({reply{outcome::timed_out}}); }))
        (*finish)({reply{outcome::queue_full}});
}

namespace {

// The answers every write shares: the store failed (not performed, or nobody knows) or the
// Idempotency-Key refused it; true when `w` is then the whole answer. (`Done`: write_done.)
template <class Done>
bool refused_or_failed(attempt tried, const write_result& r, Done& w) {
    if (tried != attempt::ok) {
        w.answer.status = tried == attempt::maybe_performed ? outcome::unknown : outcome::unavailable;
        w.outcome_unknown = tried == attempt::maybe_performed;  // a create's has no id: nothing to drop
        return true;
    }
    if (r.key == key_outcome::mismatch || r.key == key_outcome::in_progress) {
        w.answer.status = r.key == key_outcome::mismatch ? outcome::key_mismatch : outcome::key_in_progress;
        return true;
    }
    w.answer.replayed = r.key == key_outcome::replayed;
    return false;
}

}  // namespace

void user_service::create(new_user u, callback done, std::optional<idempotency_key> key) {
    submit_write(
        0,
        [u = std::move(u), key](user_repository& repo) {
            write_done w;
            write_result r;
            const auto tried = guarded([&] { r = key ? repo.create_once(u, *key) : repo.create(u); }, w.answer.error);
            if (refused_or_failed(tried, r, w)) return w;
            if (r.status != write_status::done) {
                w.answer.status = outcome_of(r.status);
                return w;
            }
            w.answer = {outcome::ok, source::miss, entry_of(r.stored), r.stored.id, {}, w.answer.replayed};
            if (!w.answer.replayed) {  // a replay writes nothing and teaches the cache nothing
                w.id = r.stored.id;
                w.now_is = w.answer.user;
            }
            return w;
        },
        std::move(done), key);
}

void user_service::update(std::int64_t id, user_patch patch, precondition pre, callback done,
                          std::optional<idempotency_key> key) {
    submit_write(
        id,
        [id, patch = std::move(patch), pre = std::move(pre), key](user_repository& repo) {
            write_done w;
            w.id = id;
            write_result r;
            const auto tried =
                guarded([&] { r = key ? repo.update_once(id, patch, pre, *key) : repo.update(id, patch, pre); },
                        w.answer.error);
            if (refused_or_failed(tried, r, w)) return w;
            w.answer.status = outcome_of(r.status);
            if (r.status == write_status::done) {
                w.answer.from = source::miss;
                w.answer.user = entry_of(r.stored);
                w.answer.id = id;
            }
            if (w.answer.replayed) return w;
            if (r.status == write_status::done) w.now_is = w.answer.user;
            if (r.status == write_status::not_found) w.now_is = cached_user{};  // the store says so now
            return w;
        },
        std::move(done), key);
}

void user_service::remove(std::int64_t id, precondition pre, callback done, std::optional<idempotency_key> key) {
    submit_write(
        id,
        [id, pre = std::move(pre), key](user_repository& repo) {
            write_done w;
            w.id = id;
            write_result r;
            const auto tried =
                guarded([&] { r = key ? repo.remove_once(id, pre, *key) : repo.remove(id, pre); }, w.answer.error);
            if (refused_or_failed(tried, r, w)) return w;
            w.answer.status = outcome_of(r.status);
            if (w.answer.replayed) return w;
            // Deleted: a tombstone of the version it removed. Not there: no such user now.
            if (r.status == write_status::done) w.now_is = cached_user::deleted(r.stored.version);
            if (r.status == write_status::not_found) w.now_is = cached_user{};
            return w;
        },
        std::move(done), key);
}

void user_service::purge_keys(std::chrono::seconds ttl, std::function<void(std::size_t)> done) {
    auto shared_done = std::make_shared<std::function<void(std::size_t)>>(std::move(done));
    auto op = [this, ttl, shared_done](std::size_t slot) {
        std::size_t n = 0;
        std::string error;
        guarded([&] { n = repos_[slot]->purge_keys(ttl); }, error);
        (*shared_done)(n);
    };
    if (!submit_watched(std::move(op), clock_.now() + request_timeout_, [shared_done] { (*shared_done)(0); }))
        (*shared_done)(0);
}

void user_service::list(std::int64_t after, std::size_t limit, page_callback done) {
    auto shared_done = std::make_shared<page_callback>(std::move(done));
    auto op = [this, after, limit, shared_done](std::size_t slot) {
        page p;
        if (guarded([&] { p.users = repos_[slot]->list(after, limit); }, p.error) == attempt::ok)
            p.status = outcome::ok;
        reads_.fetch_add(1, std::memory_order_relaxed);
        (*shared_done)(p);
    };
    if (!submit_watched(std::move(op), clock_.now() + request_timeout_, [shared_done] {
            (*shared_done)(page{outcome::timed_out, {}, {}});
        }))
        (*shared_done)(page{outcome::queue_full, {}, {}});
}

void user_service::clear_cache(std::function<void(std::size_t)> done) {
    const auto cleared = cache_.clear();
    if (!repos_.front()->shared()) {
        done(cleared);
        return;
    }
    auto shared_done = std::make_shared<std::function<void(std::size_t)>>(std::move(done));
    auto op = [this, cleared, shared_done](std::size_t slot) {
        std::string error;
        guarded([&] { repos_[slot]->announce_clear(); }, error);  // this cache is empty either way
        (*shared_done)(cleared);
    };
    // Not strict: once it has a slot the announcement goes out, however late.
    if (!submit_watched(
            std::move(op), clock_.now() + request_timeout_, [shared_done, cleared] { (*shared_done)(cleared); }, {},
            false))
        (*shared_done)(cleared);
}

void user_service::remote_write(std::int64_t id, std::int64_t version, bool deleted) {
    if (cache_.heard(id, version, deleted)) flight_.forget(id);
}

void user_service::remote_write(std::int64_t id) {
    cache_.invalidate(id);
    flight_.forget(id);
}

void user_service::set_coherent(bool coherent) {
    if (coherent) {
        cache_.reset();                                   // anything cached while deaf may be out of date
        silent_.store(false, std::memory_order_relaxed);  // the store answered the watch
    }
    coherent_.store(coherent, std::memory_order_relaxed);
}

service_stats user_service::stats() const {
    service_stats s;
    s.cache = cache_.stats();
    s.hits = hits_.load(std::memory_order_relaxed);
    s.misses = misses_.load(std::memory_order_relaxed);
    s.negative_hits = negative_hits_.load(std::memory_order_relaxed);
    s.stale_served = stale_served_.load(std::memory_order_relaxed);
    s.refreshes = refreshes_.load(std::memory_order_relaxed);
    s.inflight = flight_.inflight();
    s.coalesced = flight_.coalesced();
    s.reads = reads_.load(std::memory_order_relaxed);
    s.writes = writes_.load(std::memory_order_relaxed);
    s.batched_ids = batched_ids_.load(std::memory_order_relaxed);
    s.queue_depth = db_.depth();
    s.queue_capacity = db_.capacity();
    return s;
}

}  // namespace userapi::service
