#include "userapi/service/user_service.hpp"

#include <memory>

namespace userapi::service {

user_json user_service::find_cached(std::int64_t id) {
    auto json = cache_.get(id);
    if (json) hits_.fetch_add(1, std::memory_order_relaxed);
    return json;
}

void user_service::get(std::int64_t id, callback done) {
    if (auto json = find_cached(id)) {
        done({outcome::hit, std::move(json), id});
        return;
    }
    misses_.fetch_add(1, std::memory_order_relaxed);
    auto joined = flight_.join(id, [id, done = std::move(done)](const load_result& r, bool leader) {
        const bool found = r.status == outcome::miss;
        done({found ? (leader ? outcome::miss : outcome::coalesced) : r.status, r.json, id, r.error});
    });
    if (!joined.leader()) return;
    auto call = joined.leader_of;
    try {
        // A read that completed between our cache miss and the join has already filled the
        // cache (it inserts before it leaves the map): look again rather than read twice.
        if (auto json = cache_.get(id)) {
            flight_.complete(call, {outcome::miss, std::move(json)});
            return;
        }
        const auto deadline = clock_.now() + request_timeout_;
        if (!db_.submit([this, call, id] { load(call, id); }, deadline,
                        [this, call] {
                            flight_.complete(call, {outcome::timed_out, user_json{}});
                        }))
            flight_.complete(call, {outcome::queue_full, user_json{}});
    } catch (const std::exception& e) {
        flight_.complete(call, {outcome::unavailable, user_json{}, e.what()});
    } catch (...) {
        flight_.complete(call, {outcome::unavailable, user_json{}, "unknown error"});
    }
}

void user_service::load(const flight_type::call_ptr& call, std::int64_t id) {
    load_result result{outcome::unavailable, user_json{}};
    try {
        auto u = repo_.find(id);
        reads_.fetch_add(1, std::memory_order_relaxed);
        if (u) {
            result = {outcome::miss, user_json(to_json(*u))};
            cache_.put(id, result.json);  // before complete(): no second read can slip in
        } else {
            result = {outcome::not_found, user_json{}};
        }
    } catch (const std::exception& e) {
        result = {outcome::unavailable, user_json{}, e.what()};  // never cached: the next request tries again
    } catch (...) {
        result = {outcome::unavailable, user_json{}, "unknown error"};
    }
    flight_.complete(call, result);
}

void user_service::create(new_user u, callback done) {
    auto shared_done = std::make_shared<callback>(std::move(done));
    auto op = [this, u = std::move(u), shared_done] {
        user_reply reply{outcome::unavailable, user_json{}, 0};
        try {
            auto r = repo_.create(u);
            writes_.fetch_add(1, std::memory_order_relaxed);
            if (r.created) {
                reply = {outcome::created, user_json(to_json(r.stored)), r.stored.id};
                cache_.put(r.stored.id, reply.json);
            } else {
                reply = {outcome::email_taken, user_json{}, 0};
            }
        } catch (const std::exception& e) {
            reply = {outcome::unavailable, user_json{}, 0, e.what()};
        } catch (...) {
            reply = {outcome::unavailable, user_json{}, 0, "unknown error"};
        }
        (*shared_done)(reply);
    };
    const auto deadline = clock_.now() + request_timeout_;
    if (!db_.submit(std::move(op), deadline, [shared_done] { (*shared_done)({outcome::timed_out, user_json{}, 0}); }))
        (*shared_done)({outcome::queue_full, user_json{}, 0});
}

service_stats user_service::stats() const {
    service_stats s;
    s.cache = cache_.stats();
    s.hits = hits_.load(std::memory_order_relaxed);
    s.misses = misses_.load(std::memory_order_relaxed);
    s.inflight = flight_.inflight();
    s.coalesced = flight_.coalesced();
    s.reads = reads_.load(std::memory_order_relaxed);
    s.writes = writes_.load(std::memory_order_relaxed);
    s.queue_depth = db_.depth();
    return s;
}

}  // namespace userapi::service
