#include "userapi/http/users_resource.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

#include "userapi/http/await_reply.hpp"
#include "userapi/http/body_rules.hpp"
#include "userapi/http/cache_directives.hpp"
#include "userapi/http/conditional.hpp"
#include "userapi/http/idempotency.hpp"
#include "userapi/http/problem.hpp"
#include "userapi/log/log.hpp"
#include "userapi/service/user_validation.hpp"

namespace userapi::http {

namespace asio = boost::asio;
using field = bhttp::field;
using service::outcome;

namespace {

constexpr std::size_t kDefaultPage = 20, kMaxPage = 100;

// How long a write waits for its outcome. The DB queue answers "not performed" at the request
// timeout itself (the deadline is checked just before the statement is sent), and a store
// operation ends by --db-operation-timeout-ms; this margin past both only bounds a write whose
// end never reaches us: its outcome is then unknown.
constexpr std::chrono::milliseconds kSentWriteGrace{1000};

// The 503/504 answers shared by reads and writes. A database failure's cause goes to the
// log, under the request id the client sees, never into the response. A write's answer says
// whether it was performed (contract 8.2): "written": false, or null when nobody can know.
void set_unavailable(response& res, outcome status, const std::string& error, std::string_view request_id,
                     bool write = false) {
    if (status == outcome::unavailable || status == outcome::unknown)
        log::log_event(spdlog::level::err, "database error", {{"request_id", request_id}, {"error", error}});
    const auto answer = [&](unsigned code, std::string_view detail, bool known = true) {
        if (write)
            set_write_problem(res, code, detail, known);
        else
            set_problem(res, code, detail);
    };
    if (status == outcome::timed_out) {
        answer(504, write ? "the database did not take the write in time: it was not performed"
                          : "the database did not answer in time");
        return;
    }
    res.set(field::retry_after, "1");
    if (status == outcome::queue_full)
        answer(503, write ? "the database queue is full: the write was not performed; retry shortly"
                          : "the database queue is full; retry shortly");
    else if (status == outcome::unknown)
        answer(503,
               "the outcome of this write is unknown: the connection to the database broke after it was sent; "
               "retry with the same Idempotency-Key to learn it safely",
               false);
    else
        answer(503, write ? "the database is unavailable: the write was not performed; retry shortly"
                          : "the database is unavailable; retry shortly");
}

// Contract 9.6: every write is an event naming who made it, the user, and its new version
// (for a delete, the version it removed). A replayed Idempotency-Key wrote nothing: no event.
void audit_write(const exchange& x, std::string_view action, std::int64_t id, std::int64_t version) {
    if (!log::log_enabled(spdlog::level::info)) return;
    const auto user = std::to_string(id);
    if (version > 0)
        log::log_event(spdlog::level::info, "write",
                       {{"request_id", x.id},
                        {"identity", x.identity()},
                        {"action", action},
                        {"user_id", user, true},
                        {"version", std::to_string(version), true}});
    else
        log::log_event(spdlog::level::info, "write",
                       {{"request_id", x.id}, {"identity", x.identity()}, {"action", action}, {"user_id", user, true}});
}

// The scope of an Idempotency-Key: "" is the server's own (anonymous requests). An
// authenticated request's keys are its identity's (contract 9.5), so one client's keys never
// answer another's.
std::string key_scope(const exchange& x) { return x.who ? std::string(x.who->identity) : std::string(); }

const char* x_cache(service::source s) {
    switch (s) {
        case service::source::hit:
            return "HIT";
        case service::source::miss:
            return "MISS";
        case service::source::coalesced:
            return "COALESCED";
        case service::source::stale:
            return "STALE";
    }
    return "MISS";
}

// A user's representation: the JSON, its ETag, and for GET/HEAD the caching rules.
void set_user(response& res, unsigned status, std::int64_t id, const service::cached_user& u) {
    set_json(res, status, u.json);
    res.set(field::etag, etag_of(id, u.version));
}

bool bad_id(exchange& x, std::optional<std::int64_t>& id) {
    id = parse_user_id(x.match.id);
    if (id) return false;
    set_problem(x.res, 400,
                "id must be a positive decimal integer up to 9223372036854775807 without leading zeros, got \"" +
                    clip(x.match.id) + "\"");
    return true;
}

// A canonical non-negative decimal integer (no sign, no leading zeros) up to `max`.
std::optional<std::int64_t> canonical_number(std::string_view s, std::int64_t max) {
    if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v < 0 || v > max) return std::nullopt;
    return v;
}

std::string percent_decoded(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        int hi = 0, lo = 0;
        auto hex = [](char c, int& v) {
            if (c >= '0' && c <= '9')
                v = c - '0';
            else if (c >= 'a' && c <= 'f')
                v = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                v = c - 'A' + 10;
            else
                return false;
            return true;
        };
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1], hi) && hex(s[i + 2], lo)) {
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

struct page_request {
    std::int64_t limit = kDefaultPage;
    std::int64_t after = 0;
    std::string problem;  // names the bad parameter
};

// ?limit=N&after=ID; other parameters are ignored, these two may appear once each.
page_request parse_page(std::string_view target) {
    page_request p;
    const auto q = target.find('?');
    if (q == std::string_view::npos) return p;
    bool seen_limit = false, seen_after = false;
    auto query = target.substr(q + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const auto key = percent_decoded(pair.substr(0, eq));
        const auto value = eq == std::string_view::npos ? std::string() : percent_decoded(pair.substr(eq + 1));
        if (key == "limit") {
            const auto v = canonical_number(value, static_cast<std::int64_t>(kMaxPage));
            if (seen_limit) return {0, 0, "limit is given more than once"};
            if (!v || *v < 1) return {0, 0, "limit must be a whole number from 1 to 100, got \"" + clip(value) + "\""};
            p.limit = *v;
            seen_limit = true;
        } else if (key == "after") {
            const auto v = canonical_number(value, INT64_MAX);
            if (seen_after) return {0, 0, "after is given more than once"};
            if (!v)
                return {0, 0,
                        "after must be a user id (0 or a positive decimal integer without leading zeros), got \"" +
                            clip(value) + "\""};
            p.after = *v;
            seen_after = true;
        }
    }
    return p;
}

}  // namespace

void users_resource::answer_cached(exchange& x, std::int64_t id, const service::user_cache::lookup& found) {
    users_.served_from_cache(id, found);
    answer_read(x, id, found.entry, found.stale ? service::source::stale : service::source::hit);
}

std::optional<service::precondition> users_resource::write_precondition(exchange& x, std::int64_t id) {
    const auto field_value = joined_field(x.req, "If-Match");
    if (x.req.find(field::if_match) == x.req.end()) {
        if (cfg_.require_if_match) {
            set_problem(x.res, 428,
                        "this server requires If-Match on " + std::string(x.req.method_string()) +
                            ": send the ETag of the version you are changing");
            return std::nullopt;
        }
        return service::precondition{};
    }
    auto pre = if_match_precondition(field_value, id);
    if (!pre) set_problem(x.res, 400, "If-Match must be * or a list of entity tags such as \"1-2\"");
    return pre;
}

bool users_resource::write_key(exchange& x, std::optional<service::idempotency_key>& key) {
    const auto f = idempotency_key_of(x.req);
    if (!f.present) return true;
    if (!f.key) {
        set_problem(x.res, 400,
                    "Idempotency-Key must be one field of 1 to 255 visible ASCII characters, or a quoted string of "
                    "them");
        return false;
    }
    key = service::idempotency_key{key_scope(x), *f.key, request_fingerprint(x.req),
                                   std::chrono::seconds(cfg_.idempotency_ttl_s)};
    return true;
}

std::chrono::milliseconds users_resource::write_wait() const {
    return std::chrono::milliseconds(cfg_.request_timeout_ms + cfg_.db_latency_ms + cfg_.db_operation_timeout_ms) +
           kSentWriteGrace;
}

asio::awaitable<void> users_resource::get(exchange& x) {
    std::optional<std::int64_t> id;
    if (bad_id(x, id)) co_return;
    service::source from = service::source::hit;
    service::cached_user user;
    const bool fresh = asks_for_store(x.req);  // Cache-Control: no-cache: the store answers (8.3)
    if (auto c = fresh ? std::nullopt : users_.find_cached(*id)) {
        user = std::move(c->entry);
        if (c->stale) from = service::source::stale;
    } else {
        const auto r = co_await await_reply<service::reply>(
            [&](auto done) {
                if (fresh)
                    users_.get_fresh(*id, std::move(done));
                else
                    users_.get(*id, std::move(done));
            },
            std::chrono::milliseconds(cfg_.request_timeout_ms));
        if (!r || (r->status != outcome::ok && r->status != outcome::not_found)) {
            set_unavailable(x.res, r ? r->status : outcome::timed_out, r ? r->error : std::string(), x.id);
            co_return;
        }
        from = r->from;
        user = r->user;
    }
    answer_read(x, *id, user, from);
}

void users_resource::answer_read(exchange& x, std::int64_t id, const service::cached_user& user, service::source from) {
    auto& res = x.res;
    res.set("X-Cache", x_cache(from));
    if (!user.exists()) {
        set_problem(res, 404, "user " + std::to_string(id) + " not found");
        return;
    }
    const auto etag = etag_of(id, user.version);
    res.set(field::cache_control, "no-cache");
    if (const auto inm = x.req.find(field::if_none_match); inm != x.req.end()) {
        const auto hit = none_match_hits(joined_field(x.req, "If-None-Match"), etag);
        if (!hit) {
            set_problem(res, 400, "If-None-Match must be * or a list of entity tags such as \"1-2\"");
            return;
        }
        if (*hit) {
            res.result(304);
            res.set(field::etag, etag);
            return;
        }
    }
    set_user(res, 200, id, user);
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
    std::optional<service::idempotency_key> key;
    if (!write_key(x, key)) co_return;
    auto u = std::get<service::new_user>(std::move(parsed));
    const std::string email = u.email;
    const auto r = co_await await_reply<service::reply>(
        [&](auto done) { users_.create(std::move(u), std::move(done), std::move(key)); }, write_wait());
    if (r && r->status == outcome::ok) {
        if (!r->replayed) audit_write(x, "create", r->id, r->user.version);
        set_user(res, 201, r->id, r->user);
        res.set(field::location, "/users/" + std::to_string(r->id));
    } else if (r && r->status == outcome::email_taken) {
        set_problem(res, 409, "email " + clip(email) + " is already taken");
    } else {
        answer_write_failure(x, 0, r, email);
    }
    if (r && r->replayed) res.set("Idempotent-Replayed", "true");
}

asio::awaitable<void> users_resource::patch(exchange& x) {
    auto& res = x.res;
    std::optional<std::int64_t> id;
    if (bad_id(x, id)) co_return;
    if (auto bad = body_problem(x.req, {"application/merge-patch+json", "application/json"})) {
        set_problem(res, bad.status, bad.detail);
        co_return;
    }
    auto parsed = service::parse_user_patch(x.req.body());
    if (auto* bad = std::get_if<service::invalid_user>(&parsed)) {
        set_problem(res, 400, bad->detail);
        co_return;
    }
    auto pre = write_precondition(x, *id);
    if (!pre) co_return;
    std::optional<service::idempotency_key> key;
    if (!write_key(x, key)) co_return;
    auto p = std::get<service::user_patch>(std::move(parsed));
    const std::string email = p.email.value_or("");
    const auto r = co_await await_reply<service::reply>(
        [&](auto done) { users_.update(*id, std::move(p), std::move(*pre), std::move(done), std::move(key)); },
        write_wait());
    if (r && r->status == outcome::ok) {
        if (!r->replayed) audit_write(x, "update", *id, r->user.version);
        set_user(res, 200, *id, r->user);
    } else {
        answer_write_failure(x, *id, r, email);
    }
    if (r && r->replayed) res.set("Idempotent-Replayed", "true");
}

asio::awaitable<void> users_resource::remove(exchange& x) {
    std::optional<std::int64_t> id;
    if (bad_id(x, id)) co_return;
    auto pre = write_precondition(x, *id);
    if (!pre) co_return;
    std::optional<service::idempotency_key> key;
    if (!write_key(x, key)) co_return;
    const auto r = co_await await_reply<service::reply>(
        [&](auto done) { users_.remove(*id, std::move(*pre), std::move(done), std::move(key)); }, write_wait());
    if (r && r->status == outcome::ok) {
        if (!r->replayed) audit_write(x, "delete", *id, r->user.version);
        x.res.result(204);
    } else {
        answer_write_failure(x, *id, r, "");
    }
    if (r && r->replayed) x.res.set("Idempotent-Replayed", "true");
}

void users_resource::answer_write_failure(exchange& x, std::int64_t id, const std::optional<service::reply>& r,
                                          const std::string& email) {
    auto& res = x.res;
    if (r && r->status == outcome::not_found)
        set_problem(res, 404, "user " + std::to_string(id) + " not found");
    else if (r && r->status == outcome::email_taken)
        set_problem(res, 409, "email " + clip(email) + " belongs to another user");
    else if (r && r->status == outcome::precondition_failed)
        set_problem(res, 412,
                    "If-Match does not name the current version of user " + std::to_string(id) +
                        ": nothing was changed; GET it for its current ETag");
    else if (r && r->status == outcome::key_mismatch)
        set_problem(res, 422,
                    "this Idempotency-Key was used for a different request (method, path, body or If-Match): "
                    "nothing was written; use a new key for a new request");
    else if (r && r->status == outcome::key_in_progress) {
        res.set(field::retry_after, "1");
        set_problem(res, 409, "a request with this Idempotency-Key is still being processed; retry shortly");
    } else if (!r)  // sent, and the store did not answer in time: nobody knows
        set_unavailable(res, outcome::unknown, "no outcome in time", x.id, true);
    else
        set_unavailable(res, r->status, r->error, x.id, true);
}

asio::awaitable<void> users_resource::list(exchange& x) {
    auto& res = x.res;
    const auto want = parse_page(x.req.target());
    if (!want.problem.empty()) {
        set_problem(res, 400, want.problem);
        co_return;
    }
    const auto limit = static_cast<std::size_t>(want.limit);
    // One more than the page holds tells whether a next page exists.
    const auto r =
        co_await await_reply<service::page>([&](auto done) { users_.list(want.after, limit + 1, std::move(done)); },
                                            std::chrono::milliseconds(cfg_.request_timeout_ms));
    if (!r || r->status != outcome::ok) {
        set_unavailable(res, r ? r->status : outcome::timed_out, r ? r->error : std::string(), x.id);
        co_return;
    }
    const bool more = r->users.size() > limit;
    const auto shown = more ? limit : r->users.size();
    nlohmann::ordered_json body;
    body["users"] = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < shown; ++i) {
        const auto& u = r->users[i];
        body["users"].push_back({{"id", u.id}, {"name", u.name}, {"email", u.email}});
    }
    if (more) {
        const auto next = "/users?limit=" + std::to_string(limit) + "&after=" + std::to_string(r->users[shown - 1].id);
        body["next"] = next;
        res.set(field::link, "<" + next + ">; rel=\"next\"");
    } else {
        body["next"] = nullptr;
    }
    set_json(res, 200, core::shared_bytes(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
}

}  // namespace userapi::http
