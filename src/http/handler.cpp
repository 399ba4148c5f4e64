#include "userapi/http/handler.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

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
void rate_limit_fields(const core::bucket_policy& p, const core::bucket_state& s, Put&& put) {
    const auto cap = static_cast<long long>(p.capacity);
    char buf[64];
    const auto field = [&](std::string_view name, const char* format, auto... values) {
        const int n = std::snprintf(buf, sizeof buf, format, values...);
        put(name, std::string_view(buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1))));
    };
    field("RateLimit-Limit", "%lld", cap);
    field("RateLimit-Remaining", "%lld", static_cast<long long>(s.remaining));
    field("RateLimit-Reset", "%lld", static_cast<long long>(s.reset_seconds));
    field("RateLimit-Policy", "\"default\";q=%lld;w=%lld", cap, static_cast<long long>(p.window_seconds()));
    field("RateLimit", "\"default\";r=%lld;t=%lld", static_cast<long long>(s.remaining),
          static_cast<long long>(s.next_token_seconds));
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

}  // namespace

handler::handler(const config::settings& cfg, service::user_service& users, limit::local_rate_limiter* limiter,
                 const core::client_resolver& clients, metrics& stats, server_state& state, instance_info instance,
                 limit::redis_rate_limiter* shared)
    : limiter_(limiter),
      shared_(limiter ? shared : nullptr),
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
        x.client = clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"));
        const auto s = limiter_->acquire(*x.client);
        if (!s.allowed) {  // the 429, the ordinary way
            apply(x, limit::rate_decision{s});
            finish(x);
            return {at_once::message, std::move(x.res), {}};
        }
        rate_limit_fields(limiter_->policy(), s, [&](std::string_view name, std::string_view value) {
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

bool handler::admit_locally(exchange& x) {
    if (!x.match.limited || !limiter_) return true;
    x.client = clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"));
    return apply(x, limit::rate_decision{limiter_->acquire(*x.client)});
}

asio::awaitable<bool> handler::admit(exchange& x) {
    if (!x.match.limited || !limiter_) co_return true;
    if (!shared_) co_return admit_locally(x);
    x.client = clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"));
    // The shared table (Redis) answers later, on this thread. (No co_await inside ?: here:
    // GCC 12 miscompiles it.)
    const auto decision = co_await shared_->acquire(*x.client);
    co_return apply(x, decision);
}

// Sets the RateLimit headers, and the 429 (or 503) when the request may not proceed.
bool handler::apply(exchange& x, const limit::rate_decision& d) {
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
    rate_limit_fields(limiter_->policy(), s,
                      [&](std::string_view name, std::string_view value) { res.set(name, value); });
    if (s.allowed) return true;
    stats_.rate_limited();
    res.set(field::retry_after, std::to_string(s.retry_after_seconds));
    set_problem(res, 429,
                "rate limit exceeded: " + std::to_string(static_cast<long long>(limiter_->policy().capacity)) +
                    " requests per window; retry in " + std::to_string(s.retry_after_seconds) + " s");
    return false;
}

asio::awaitable<void> handler::dispatch(exchange& x) {
    if (!co_await admit(x)) co_return;
    const auto verb = x.req.method();
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
                           {"peer", x.peer_text}});
    }
}

}  // namespace userapi::http
