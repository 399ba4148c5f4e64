#include "userapi/http/handler.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "userapi/http/await_reply.hpp"
#include "userapi/http/cache_directives.hpp"
#include "userapi/http/problem.hpp"
#include "userapi/log/access_log.hpp"
#include "userapi/log/log.hpp"

namespace userapi::http {

namespace asio = boost::asio;
using field = bhttp::field;

namespace {

// The RateLimit fields (draft-ietf-httpapi-ratelimit-headers) of one decision, each handed to
// `put` as name and value, formatted on the stack: nothing allocated.
template <class Put>
void rate_limit_fields(const core::bucket_policy& p, const core::bucket_state& s, bool identity, Put&& put) {
    const auto cap = static_cast<long long>(p.capacity);
    char buf[64];
    const auto field = [&](std::string_view name, const char* format, auto... values) {
        const int n = std::snprintf(buf, sizeof buf, format, values...);
        put(name, std::string_view(buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1))));
    };
    field("RateLimit-Limit", "%lld", cap);
    field("RateLimit-Remaining", "%lld", static_cast<long long>(s.remaining));
    field("RateLimit-Reset", "%lld", static_cast<long long>(s.reset_seconds));
    // An authenticated identity's bucket is the policy "identity" (contract 9.5).
    if (identity) {
        field("RateLimit-Policy", "\"identity\";q=%lld;w=%lld", cap, static_cast<long long>(p.window_seconds()));
        field("RateLimit", "\"identity\";r=%lld;t=%lld", static_cast<long long>(s.remaining),
              static_cast<long long>(s.next_token_seconds));
    } else {
        field("RateLimit-Policy", "\"default\";q=%lld;w=%lld", cap, static_cast<long long>(p.window_seconds()));
        field("RateLimit", "\"default\";r=%lld;t=%lld", static_cast<long long>(s.remaining),
              static_cast<long long>(s.next_token_seconds));
    }
}

// The Date header, formatted once per second per thread.
const std::string& http_date() {
    thread_local std::time_t cached_second = 0;
    thread_local std::string cached;
    const std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        char buf[64];
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = buf;
        cached_second = now;
    }
    return cached;
}

method_label label_of(bhttp::verb v) {
    switch (v) {
        case bhttp::verb::get:
            return method_label::get;
        case bhttp::verb::head:
            return method_label::head;
        case bhttp::verb::post:
            return method_label::post;
        case bhttp::verb::delete_:
            return method_label::del;
        case bhttp::verb::patch:
            return method_label::patch;
        default:
            return method_label::other;
    }
}

// The methods HTTP itself defines (RFC 9110, and PATCH, RFC 5789): a resource that does not
// serve one answers 405; any other method is not implemented anywhere here (501).
bool is_standard_method(bhttp::verb v) {
    switch (v) {
        case bhttp::verb::get:
        case bhttp::verb::head:
        case bhttp::verb::post:
        case bhttp::verb::put:
        case bhttp::verb::delete_:
        case bhttp::verb::connect:
        case bhttp::verb::options:
        case bhttp::verb::trace:
        case bhttp::verb::patch:
            return true;
        default:
            return false;
    }
}

// An authenticator for the admin token alone, for a handler made without one (tests).
std::unique_ptr<auth::authenticator> own_authenticator(const config::settings& cfg, const auth_parts& parts) {
    if (parts.authenticator) return nullptr;
    static const core::system_clock clock;
    auth::options o;
    o.admin_token = cfg.admin_token;
    return std::make_unique<auth::authenticator>(std::move(o), clock);
}

}  // namespace

handler::handler(const config::settings& cfg, service::user_service& users, limit::local_rate_limiter* limiter,
                 const core::client_resolver& clients, metrics& stats, server_state& state, instance_info instance,
                 limit::redis_rate_limiter* shared, auth_parts auth)
    : limiter_(limiter),
      shared_(limiter ? shared : nullptr),
      own_auth_(own_authenticator(cfg, auth)),
      gate_(cfg, auth.authenticator ? auth.authenticator : own_auth_.get(), stats),
      identities_(auth.identities),
      identity_policy_{cfg.identity_capacity(), cfg.identity_refill_per_minute() / 60.0},
      clients_(clients),
      stats_(stats),
      state_(state),
      instance_(std::move(instance)),
      users_service_(users),
      users_(cfg, users),
      cache_(cfg, users, stats, instance_),
      ops_(users, limiter, stats, state, instance_) {}

asio::awaitable<response> handler::handle(const request& req, request_info info) {
    exchange x(req, info);
    x.res.version(req.version());
    try {
        co_await dispatch(x);
    } catch (const std::exception& e) {
        log::log_event(spdlog::level::err, "internal error", {{"request_id", x.id}, {"error", e.what()}});
        x.res = response{};
        x.res.version(req.version());
        set_problem(x.res, 500, "internal error; the request id identifies it in the server log");
    }
    finish(x);
    co_return std::move(x.res);
}

asio::awaitable<response> handler::reject(const request& req, unsigned status, std::string_view detail,
                                          request_info info) {
    exchange x(req, info);
    x.res.version(req.version() ? req.version() : 11);
    if (co_await admit(x)) set_problem(x.res, status, detail);
    finish(x);
    co_return std::move(x.res);
}

handler::at_once handler::answer_at_once(const request& req, const request_info& info, std::string& head) {
    const auto verb = req.method();
    if (verb != bhttp::verb::get && verb != bhttp::verb::head) return {};
    exchange x(req, info);
    x.res.version(req.version());
    switch (x.match.which) {
        case route::user: {
            // Only a hit of a valid id on the local limiter: nothing to wait for. Look first, act after.
            const auto id = parse_user_id(x.match.id);
            if (!id || shared_ || asks_for_store(req)) return {};  // no-cache: the store answers (8.3)
            if (gate_.active()) {  // credentials the memo knows, or none that are needed; else handle()
                const auto d = gate_.decide(req, route::user, verb, false, true);
                if (d.kind != auth_gate::decision::pass) return {};
                x.who = d.who;
            }
            const auto found = users_service_.peek_cached(*id);
            if (!found) return {};
            if (req.version() == 11 && req.keep_alive() && !state_.draining.load(std::memory_order_relaxed) &&
                found->entry.exists() && !found->stale && req.find(field::if_none_match) == req.end())
                return render_cached_user(x, *id, *found, head);
            if (admit_locally(x)) users_.answer_cached(x, *id, *found);
            break;
        }
        case route::healthz:
            ops_.healthz(x);
            break;
        case route::readyz:
            ops_.readyz(x);
            break;
        case route::metrics:
            ops_.metrics_text(x);
            break;
        default:
            return {};
    }
    finish(x);
    return {at_once::message, std::move(x.res), {}};
}

// The same answer users_resource gives a cached user, written as bytes at once: no header
// map to build, search and walk for the request that most often comes.
handler::at_once handler::render_cached_user(exchange& x, std::int64_t id, const service::user_cache::lookup& found,
                                             std::string& head) {
    head.clear();
    head += "HTTP/1.1 200 OK\r\n";
    if (x.match.limited && limiter_) {
        const bool identity = x.who && identities_;
        const auto& policy = identity ? policy_of(*x.who) : limiter_->policy();
        core::bucket_state s;
        if (identity) {
            s = identities_->acquire(x.who->identity, policy);
        } else {
            x.client = clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"));
            s = limiter_->acquire(*x.client);
        }
        if (!s.allowed) {  // the 429, the ordinary way
            apply(x, limit::rate_decision{s}, policy, identity);
            finish(x);
            return {at_once::message, std::move(x.res), {}};
        }
        rate_limit_fields(policy, s, identity, [&](std::string_view name, std::string_view value) {
            head += name;
            head += ": ";
            head += value;
            head += "\r\n";
        });
    }
    users_service_.served_from_cache(id, found);
    const auto& json = found.entry.json;
    char etag[48], length[24];  // "id-version", as etag_of() writes it, without printf
    char* e = etag;
    *e++ = '"';
    e = std::to_chars(e, etag + sizeof etag, id).ptr;
    *e++ = '-';
    e = std::to_chars(e, etag + sizeof etag, found.entry.version).ptr;
    *e++ = '"';
    const auto length_end = std::to_chars(length, length + sizeof length, json.size()).ptr;
    head += "X-Cache: HIT\r\nCache-Control: no-cache\r\nContent-Type: application/json\r\nETag: ";
    head.append(etag, static_cast<std::size_t>(e - etag));
    head += "\r\nDate: ";
    head += http_date();
    head += "\r\nX-Request-Id: ";
    head += x.id;
    head += "\r\nContent-Length: ";
    head.append(length, static_cast<std::size_t>(length_end - length));
    head += "\r\n\r\n";
    record(x, 200);
    return {at_once::rendered, std::nullopt, json};
}

const core::bucket_policy& handler::policy_of(const auth::principal& who) const {
    return who.rate_limit ? *who.rate_limit : identity_policy_;
}

bool handler::admit_locally(exchange& x) {
    if (!x.match.limited || !limiter_) return true;
    if (x.who && identities_) {
        const auto& policy = policy_of(*x.who);
        return apply(x, limit::rate_decision{identities_->acquire(x.who->identity, policy)}, policy, true);
    }
    x.client = clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"));
    return apply(x, limit::rate_decision{limiter_->acquire(*x.client)}, limiter_->policy(), false);
}

asio::awaitable<bool> handler::admit(exchange& x) {
    if (!x.match.limited || !limiter_) co_return true;
    if (!shared_) co_return admit_locally(x);
    // The shared table (Redis) answers later, on this thread. (No co_await inside ?: here:
    // GCC 12 miscompiles it.)
    if (x.who && identities_) {
        const auto& policy = policy_of(*x.who);
        const auto decision = co_await shared_->acquire(std::string_view(x.who->identity), policy);
        co_return apply(x, decision, policy, true);
    }
    x.client = clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"));
    const auto decision = co_await shared_->acquire(*x.client);
    co_return apply(x, decision, limiter_->policy(), false);
}

asio::awaitable<bool> handler::authenticate(exchange& x) {
    auto d = gate_.decide(x.req, x.match.which, x.req.method(), true);
    if (d.kind == auth_gate::decision::unknown_kid) {
        // A kid the set does not hold (yet): the JWKS URL once more, at most every 30 s, then again.
        auto* a = gate_.authenticator();
        const auto refreshed = co_await await_reply<bool>(
            [a](auto done) {
                if (!a->refresh_for_unknown_kid([done] { done(true); })) done(false);
            },
            a->fetch_timeout() + std::chrono::seconds(1));
        if (refreshed && *refreshed) d = gate_.decide(x.req, x.match.which, x.req.method(), true);
        if (d.kind == auth_gate::decision::unknown_kid) d.kind = auth_gate::decision::refuse;
    }
    x.who_owned = std::move(d.owned);
    x.who = x.who_owned.get();
    if (!co_await admit(x)) co_return false;  // 400 and 401 are charged to the address, 403 to the identity
    if (d.kind != auth_gate::decision::pass) {
        gate_.refuse(x, d);
        co_return false;
    }
    if (x.body_unread) {  // refused on its header, accepted now: the credentials were reloaded meanwhile
        x.res.set(field::retry_after, "1");
        set_problem(x.res, 503, "the credentials changed while the request arrived; send it again");
        co_return false;
    }
    co_return true;
}

bool handler::refuses_unread(const request& header) {
    if (!gate_.active()) return false;
    const auto m = match_route(header.target());
    if (!scope_needed(m.which, header.method())) return false;
    return gate_.decide(header, m.which, header.method(), false).kind == auth_gate::decision::refuse;
}

// Sets the RateLimit headers, and the 429 (or 503) when the request may not proceed.
bool handler::apply(exchange& x, const limit::rate_decision& d, const core::bucket_policy& policy, bool identity) {
    auto& res = x.res;
    if (d.unavailable) {
        res.set(field::retry_after, "1");
        const auto verb = x.req.method();
        const bool user_write =
            (x.match.which == route::user || x.match.which == route::users) &&
            (verb == bhttp::verb::post || verb == bhttp::verb::patch || verb == bhttp::verb::delete_);
        if (user_write)  // refused before it ran: a write's 503 says so (8.2)
            set_write_problem(res, 503,
                              "the rate-limit store is unavailable: the write was not performed; retry shortly", true);
        else
            set_problem(res, 503, "the rate-limit store is unavailable; retry shortly");
        return false;
    }
    const auto& s = d.state;
    rate_limit_fields(policy, s, identity,
                      [&](std::string_view name, std::string_view value) { res.set(name, value); });
    if (s.allowed) return true;
    stats_.rate_limited();
    res.set(field::retry_after, std::to_string(s.retry_after_seconds));
    set_problem(res, 429,
                "rate limit exceeded: " + std::to_string(static_cast<long long>(policy.capacity)) +
                    " requests per window; retry in " + std::to_string(s.retry_after_seconds) + " s");
    return false;
}

asio::awaitable<void> handler::dispatch(exchange& x) {
    const auto verb = x.req.method();
    // A served method of a guarded route: credentials first (contract 9.2). Everything else
    // (404, 405, 501, the open routes) is charged to its address and answered without them.
    if (scope_needed(x.match.which, verb)) {
        if (!co_await authenticate(x)) co_return;
    } else if (!co_await admit(x)) {
        co_return;
    }
    if (!is_standard_method(verb)) {
        set_problem(x.res, 501, "method " + clip(x.req.method_string()) + " is not implemented");
        co_return;
    }
    const bool read = verb == bhttp::verb::get || verb == bhttp::verb::head;
    switch (x.match.which) {
        case route::user:
            if (read) co_return co_await users_.get(x);
            if (verb == bhttp::verb::patch) co_return co_await users_.patch(x);
            if (verb == bhttp::verb::delete_) co_return co_await users_.remove(x);
            break;
        case route::users:
            if (read) co_return co_await users_.list(x);
            if (verb == bhttp::verb::post) co_return co_await users_.create(x);
            break;
        case route::cache:
            if (verb == bhttp::verb::delete_) co_return co_await cache_.clear(x);
            break;
        case route::cache_status:
            if (read) co_return cache_.status(x);
            break;
        case route::healthz:
            if (read) co_return ops_.healthz(x);
            break;
        case route::metrics:
            if (read) co_return ops_.metrics_text(x);
            break;
        case route::readyz:
            if (read) co_return ops_.readyz(x);
            break;
        case route::none: {
            const auto path = x.req.target().substr(0, x.req.target().find('?'));
            set_problem(x.res, 404, "no resource at " + clip(path));
            co_return;
        }
    }
    x.res.set(field::allow, allowed_methods(x.match.which));
    set_problem(x.res, 405,
                "method " + clip(x.req.method_string()) + " is not allowed on " +
                    std::string(route_pattern(x.match.which)) +
                    "; allowed: " + std::string(allowed_methods(x.match.which)));
}

void handler::finish(exchange& x) {
    x.res.set(field::date, http_date());
    x.res.set("X-Request-Id", x.id);
    record(x, x.res.result_int());
}

void handler::record(exchange& x, unsigned status_code) {
    const auto took = std::chrono::steady_clock::now() - x.started;
    stats_.record(x.match.which, label_of(x.req.method()), status_code, took);
    if (log::log_enabled(spdlog::level::info)) {
        // The client the rate limiter sees (X-Forwarded-For from a trusted proxy), and the peer
        // (its text made once per connection). Numbers by to_chars: no printf per request.
        std::string client;
        if (clients_.is_trusted(x.peer))
            client =
                (x.client ? *x.client : clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"))).to_string();
        char status[8], ms[32];
        const auto status_end = std::to_chars(status, status + sizeof status, status_code).ptr;
        const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
        char* p = std::to_chars(ms, ms + 20, micros / 1000).ptr;
        *p++ = '.';
        const auto frac = micros % 1000;
        *p++ = static_cast<char>('0' + frac / 100);
        *p++ = static_cast<char>('0' + frac / 10 % 10);
        *p++ = static_cast<char>('0' + frac % 10);
        log::access_event({{"request_id", x.id},
                           {"method", x.req.method_string()},
                           {"path", x.req.target()},
                           {"status", std::string_view(status, static_cast<std::size_t>(status_end - status)), true},
                           {"duration_ms", std::string_view(ms, static_cast<std::size_t>(p - ms)), true},
                           {"client", client.empty() ? x.peer_text : std::string_view(client)},
                           {"peer", x.peer_text},
                           {"identity", x.identity()}});
    }
}

}  // namespace userapi::http
