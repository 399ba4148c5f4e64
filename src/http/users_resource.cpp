#include "userapi/http/users_resource.hpp"

#include "userapi/http/await_reply.hpp"
#include "userapi/http/body_rules.hpp"
#include "userapi/http/problem.hpp"
#include "userapi/log/log.hpp"
#include "userapi/service/user_validation.hpp"

namespace userapi::http {

namespace asio = boost::asio;
using field = bhttp::field;
using service::outcome;
using service::user_reply;

namespace {

// The 503/504 answers shared by reads and writes. A database failure's cause goes to the
// log, under the request id the client sees, never into the response.
void set_unavailable(response& res, const std::optional<user_reply>& r, std::string_view request_id) {
    if (r && r->status == outcome::unavailable)
        log::log_event(spdlog::level::err, "database error", {{"request_id", request_id}, {"error", r->error}});
    if (!r || r->status == outcome::timed_out) {
        set_problem(res, 504, "the database did not answer in time");
    } else if (r->status == outcome::queue_full) {
        res.set(field::retry_after, "1");
        set_problem(res, 503, "the database queue is full; retry shortly");
    } else {
        res.set(field::retry_after, "1");
        set_problem(res, 503, "the database is unavailable; retry shortly");
    }
}

}  // namespace

asio::awaitable<void> users_resource::get(exchange& x) {
    auto& res = x.res;
    const auto id = parse_user_id(x.match.id);
    if (!id) {
        set_problem(res, 400,
                    "id must be a positive decimal integer up to 9223372036854775807 without leading zeros, got \"" +
                        clip(x.match.id) + "\"");
        co_return;
    }
    if (auto json = users_.find_cached(*id)) {
        set_json(res, 200, std::move(json));
        res.set("X-Cache", "HIT");
        co_return;
    }
    const auto r = co_await await_reply<user_reply>([&](auto done) { users_.get(*id, std::move(done)); },
                                                    std::chrono::milliseconds(cfg_.request_timeout_ms));
    if (r && (r->status == outcome::hit || r->status == outcome::miss || r->status == outcome::coalesced)) {
        set_json(res, 200, r->json);
        res.set("X-Cache", r->status == outcome::hit ? "HIT" : r->status == outcome::miss ? "MISS" : "COALESCED");
    } else if (r && r->status == outcome::not_found) {
        set_problem(res, 404, "user " + std::to_string(*id) + " not found");
    } else {
        set_unavailable(res, r, x.id);
    }
}

asio::awaitable<void> users_resource::create(exchange& x) {
    auto& res = x.res;
    if (auto bad = body_problem(x.req, {"application/json"})) {
        set_problem(res, bad.status, bad.detail);
        co_return;
    }
    auto parsed = service::parse_new_user(x.req.body());
    if (auto* bad = std::get_if<service::invalid_user>(&parsed)) {
        set_problem(res, 400, bad->detail);
        co_return;
    }
    auto u = std::get<service::new_user>(std::move(parsed));
    const std::string email = u.email;
    const auto r = co_await await_reply<user_reply>([&](auto done) { users_.create(std::move(u), std::move(done)); },
                                                    std::chrono::milliseconds(cfg_.request_timeout_ms));
    if (r && r->status == outcome::created) {
        set_json(res, 201, r->json);
        res.set(field::location, "/users/" + std::to_string(r->id));
    } else if (r && r->status == outcome::email_taken) {
        set_problem(res, 409, "email " + clip(email) + " is already taken");
    } else {
        set_unavailable(res, r, x.id);
    }
}

}  // namespace userapi::http
