#include "userapi/service/user_service.hpp"

#include <memory>
#include <stdexcept>

namespace userapi::service {
namespace {

cached_user entry_of(const user& u) { return {core::shared_bytes(to_json(u)), u.version}; }

// The reason a store call failed, for the log.
template <class F>
bool guarded(F f, std::string& error) {
    try {
        f();
        return true;
    } catch (const std::exception& e) {
        error = e.what();
    } catch (...) {
        error = "unknown error";
    }
    return false;
}

}  // namespace

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
        if (auto call = flight_.lead_if_idle(id)) {
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
    auto joined = flight_.join(id, [this, id, done = std::move(done)](const load_result& r, bool leader) {
        reply out{r.status, leader ? source::miss : source::coalesced, r.user, 0, r.error};
        const bool failed = r.status != outcome::ok && r.status != outcome::not_found;
        done(failed ? fallback(id, std::move(out)) : out);
    });
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

void user_service::start_load(const flight_type::call_ptr& call, std::int64_t id) {
    const auto ticket = cache_.begin_read(id);
    try {
        // A read that completed between our cache miss and the join has already filled the
        // cache (it stores before it leaves the map): look again rather than read twice.
        // (Not while deaf to other instances: then only the store may answer.)
        if (auto c = coherent_.load(std::memory_order_relaxed) ? cache_.get(id) : std::nullopt; c && !c->stale) {
            cache_.end_read(ticket, std::nullopt);
            flight_.complete(call, {c->entry.exists() ? outcome::ok : outcome::not_found, c->entry, {}});
            return;
        }
        const auto gone = [this, call, ticket](outcome why) {
            dequeued(call);
            cache_.end_read(ticket, std::nullopt);
            flight_.complete(call, {why, {}, {}});
        };
        queued(call);
        if (!db_.submit([this, call, ticket](std::size_t slot) { load(call, ticket, *repos_[slot]); },
                        clock_.now() + request_timeout_, [gone] { gone(outcome::timed_out); }))
            gone(outcome::queue_full);
    } catch (const std::exception& e) {
        cache_.end_read(ticket, std::nullopt);
        flight_.complete(call, {outcome::unavailable, {}, e.what()});
    }
}

void user_service::load(const flight_type::call_ptr& call, const user_cache::read_ticket& ticket,
                        user_repository& repo) {
    // Sent now, after the queue and the simulated latency: its waiters wait no longer than
    // the read timeout (8.4).
    dequeued(call);
    const auto watch = watch_operation([this, call] {
        flight_.complete(call, {outcome::unavailable, {}, "the store did not answer within --db-read-timeout-ms"});
    });
    load_result result;
    std::optional<user> u;
    const bool read = guarded([&] { u = repo.find(ticket.id); }, result.error);
    operation_ended(watch);
    reads_.fetch_add(1, std::memory_order_relaxed);
    if (read) {
        if (silent_.load(std::memory_order_relaxed)) silent_.store(false, std::memory_order_relaxed);  // it answers
        result.status = u ? outcome::ok : outcome::not_found;
        if (u) result.user = entry_of(*u);
        cache_.end_read(ticket, result.user);  // before complete(): no second read can slip in
    } else {
        cache_.end_read(ticket, std::nullopt);  // a failure is never cached: the next request tries again
    }
    flight_.complete(call, result);  // its waiters, unless the watchdog answered them already
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

bool user_service::submit_watched(db_queue::operation op, db_queue::time_point deadline, db_queue::expiry expired) {
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
        deadline, std::move(expired));
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

void user_service::written(std::int64_t id, const cached_user& now_is) {
    cache_.written(id, now_is);
    flight_.forget(id);  // requests from now on never join a read that may predate the write
}

void user_service::submit_write(std::function<reply(user_repository&)> run, callback done) {
    auto shared_done = std::make_shared<callback>(std::move(done));
    auto op = [this, run = std::move(run), shared_done](std::size_t slot) {
        writes_.fetch_add(1, std::memory_order_relaxed);
        (*shared_done)(run(*repos_[slot]));
    };
    if (!submit_watched(std::move(op), clock_.now() + request_timeout_,
                        [shared_done] { (*shared_done)(reply{outcome::timed_out}); }))
        (*shared_done)(reply{outcome::queue_full});
}

void user_service::create(new_user u, callback done) {
    submit_write(
        [this, u = std::move(u)](user_repository& repo) {
            reply out;
            write_result r;
            if (!guarded([&] { r = repo.create(u); }, out.error)) return out;
            if (r.status != write_status::done) return reply{outcome::email_taken};
            out = {outcome::ok, source::miss, entry_of(r.stored), r.stored.id, {}};
            written(r.stored.id, out.user);
            return out;
        },
        std::move(done));
}

void user_service::update(std::int64_t id, user_patch patch, precondition pre, callback done) {
    submit_write(
        [this, id, patch = std::move(patch), pre = std::move(pre)](user_repository& repo) {
            reply out;
            write_result r;
            if (!guarded([&] { r = repo.update(id, patch, pre); }, out.error)) return out;
            switch (r.status) {
                case write_status::done:
                    out = {outcome::ok, source::miss, entry_of(r.stored), id, {}};
                    written(id, out.user);
                    return out;
                case write_status::not_found:
                    written(id, {});  // the store says so now: forget any stale copy
                    return reply{outcome::not_found};
                case write_status::email_taken:
                    return reply{outcome::email_taken};
                case write_status::precondition_failed:
                    return reply{outcome::precondition_failed};
            }
            return out;
        },
        std::move(done));
}

void user_service::remove(std::int64_t id, precondition pre, callback done) {
    submit_write(
        [this, id, pre = std::move(pre)](user_repository& repo) {
            reply out;
            write_status r = write_status::done;
            if (!guarded([&] { r = repo.remove(id, pre); }, out.error)) return out;
            if (r == write_status::precondition_failed) return reply{outcome::precondition_failed};
            written(id, {});  // deleted, or it was not there: either way there is no such user now
            return reply{r == write_status::done ? outcome::ok : outcome::not_found};
        },
        std::move(done));
}

void user_service::list(std::int64_t after, std::size_t limit, page_callback done) {
    auto shared_done = std::make_shared<page_callback>(std::move(done));
    auto op = [this, after, limit, shared_done](std::size_t slot) {
        page p;
        if (guarded([&] { p.users = repos_[slot]->list(after, limit); }, p.error)) p.status = outcome::ok;
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
    if (!submit_watched(std::move(op), clock_.now() + request_timeout_,
                        [shared_done, cleared] { (*shared_done)(cleared); }))
        (*shared_done)(cleared);
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
    s.queue_depth = db_.depth();
    return s;
}

}  // namespace userapi::service
