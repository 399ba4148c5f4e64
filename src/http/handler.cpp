#include "userapi/http/handler.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "userapi/app/log.hpp"
#include "userapi/http/body_rules.hpp"
#include "userapi/http/problem.hpp"
#include "userapi/http/process_metrics.hpp"
#include "userapi/http/router.hpp"
#include "userapi/service/user_validation.hpp"

namespace userapi::http {

namespace asio = boost::asio;
using field = bhttp::field;
using service::outcome;
using service::user_reply;

namespace {

using clock_type = std::chrono::steady_clock;

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
        default:
            return method_label::other;
    }
}

// Client text in a detail: short, so an error never echoes a huge input back.
std::string clip(std::string_view s) { return s.size() <= 64 ? std::string(s) : std::string(s.substr(0, 64)) + "…"; }

// Time depends only on the length of `given`, never on where the two differ.
bool constant_time_equal(std::string_view expected, std::string_view given) {
    unsigned char diff = expected.size() != given.size() ? 1 : 0;
    for (std::size_t i = 0; i < given.size(); ++i)
        diff |= static_cast<unsigned char>((i < expected.size() ? expected[i] : 0) ^ given[i]);
    return diff == 0;
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

// "Bearer" 1*SP token (RFC 6750 section 2.1; the scheme is case-insensitive). The token, or
// nullopt when the credentials are not of that form.
std::optional<std::string_view> bearer_token(std::string_view value) {
    if (value.size() < 7 || !boost::beast::iequals(value.substr(0, 6), "Bearer") || value[6] != ' ')
        return std::nullopt;
    auto token = value.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    if (token.empty()) return std::nullopt;
    return token;
}

}  // namespace

struct handler::exchange {
    exchange(const request& r, const request_info& info) : req(r), peer(info.peer), id(info.request_id) {}
    const request& req;
    const core::ip_address& peer;
    std::string_view id;
    clock_type::time_point started = clock_type::now();
    route_match match;
    std::optional<core::ip_address> client;  // resolved once, by admit(), on limited routes
    response res;
};

handler::handler(const config::settings& cfg, service::user_service& users, rate_limiter* limiter,
                 const core::client_resolver& clients, metrics& stats, server_state& state)
    : cfg_(cfg), users_(users), limiter_(limiter), clients_(clients), stats_(stats), state_(state) {}

asio::awaitable<response> handler::handle(const request& req, const request_info& info) {
    exchange x(req, info);
    x.match = match_route(req.target());
    x.res.version(req.version());
    try {
        co_await dispatch(x);
    } catch (const std::exception& e) {
        app::log_event(spdlog::level::err, "internal error", {{"request_id", x.id}, {"error", e.what()}});
        x.res = response{};
        x.res.version(req.version());
        set_problem(x.res, 500, "internal error; the request id identifies it in the server log");
    }
    finish(x);
    co_return std::move(x.res);
}

response handler::reject(const request& req, unsigned status, std::string_view detail, const request_info& info) {
    exchange x(req, info);
    x.match = match_route(req.target());
    x.res.version(req.version() ? req.version() : 11);
    // A refused request to a limited route costs a token like any other, and says so.
    if (admit(x)) set_problem(x.res, status, detail);
    finish(x);
    return std::move(x.res);
}

// Charges the client one token on a limited route and sets the RateLimit headers; false, with
// the 429 set, when the bucket is empty.
bool handler::admit(exchange& x) {
    if (!x.match.limited || !limiter_) return true;
    auto& res = x.res;
    x.client = clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"));
    const auto s = limiter_->acquire(*x.client);
    const auto& p = limiter_->policy();
    const auto cap = static_cast<long long>(p.capacity);
    res.set("RateLimit-Limit", std::to_string(cap));
    res.set("RateLimit-Remaining", std::to_string(s.remaining));
    res.set("RateLimit-Reset", std::to_string(s.reset_seconds));
    res.set("RateLimit-Policy", "\"default\";q=" + std::to_string(cap) + ";w=" + std::to_string(p.window_seconds()));
    res.set("RateLimit", "\"default\";r=" + std::to_string(s.remaining) + ";t=" + std::to_string(s.next_token_seconds));
    if (s.allowed) return true;
    stats_.rate_limited();
    res.set(field::retry_after, std::to_string(s.retry_after_seconds));
    set_problem(res, 429,
                "rate limit exceeded: " + std::to_string(cap) + " requests per window; retry in " +
                    std::to_string(s.retry_after_seconds) + " s");
    return false;
}

asio::awaitable<void> handler::dispatch(exchange& x) {
    auto& res = x.res;
    if (!admit(x)) co_return;
    const auto verb = x.req.method();
    if (!is_standard_method(verb)) {
        set_problem(res, 501, "method " + clip(x.req.method_string()) + " is not implemented");
        co_return;
    }
    const bool read_verb = verb == bhttp::verb::get || verb == bhttp::verb::head;
    auto wrong_method = [&] {
        res.set(field::allow, allowed_methods(x.match.which));
        set_problem(res, 405,
                    "method " + clip(x.req.method_string()) + " is not allowed on " +
                        std::string(route_pattern(x.match.which)) +
                        "; allowed: " + std::string(allowed_methods(x.match.which)));
    };
    switch (x.match.which) {
        case route::user:
            if (!read_verb) break;
            co_await get_user(x);
            co_return;
        case route::users:
            if (verb != bhttp::verb::post) break;
            co_await create_user(x);
            co_return;
        case route::cache:
            if (verb != bhttp::verb::delete_) break;
            delete_cache(x);
            co_return;
        case route::cache_status:
            if (!read_verb) break;
            cache_status(x);
            co_return;
        case route::healthz:
            if (!read_verb) break;
            res.result(state_.draining.load() ? 503 : 200);
            static const core::shared_bytes ok(R"({"status":"ok"})"), draining(R"({"status":"draining"})");
            res.body() = state_.draining.load() ? draining : ok;
            res.set(field::content_type, "application/json");
            co_return;
        case route::metrics:
            if (!read_verb) break;
            render_metrics(x);
            co_return;
        case route::none: {
            const auto path = x.req.target().substr(0, x.req.target().find('?'));
            set_problem(res, 404, "no resource at " + clip(path));
            co_return;
        }
    }
    wrong_method();
}

namespace {

// Runs `start(callback)` and waits, without blocking a thread, for the callback or for
// `timeout`. The callback may run on any thread: it posts back to this coroutine's executor
// (the session's strand), which owns `reply`. nullopt means the wait timed out.
template <class Start>
asio::awaitable<std::optional<user_reply>> await_reply(Start start, std::chrono::milliseconds timeout) {
    struct waiting {
        explicit waiting(asio::any_io_executor ex) : timer(std::move(ex)) {}
        asio::steady_timer timer;         // doubles as the wake-up signal
        std::optional<user_reply> reply;  // owned by the timer's executor
    };
    auto w = std::make_shared<waiting>(co_await asio::this_coro::executor);
    w->timer.expires_after(timeout);
    start([w](const user_reply& r) {
        asio::post(w->timer.get_executor(), [w, r] {
            w->reply = r;
            w->timer.cancel();
        });
    });
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return std::move(w->reply);
}

// Whole seconds as an integer, fractions as a number.
nlohmann::ordered_json seconds(std::int64_t ms) {
    if (ms % 1000 == 0) return ms / 1000;
    return static_cast<double>(ms) / 1000.0;
}

void set_json(response& res, unsigned status, core::shared_bytes body) {
    res.result(status);
    res.body() = std::move(body);
    res.set(field::content_type, "application/json");
}

// The 503/504 answers shared by reads and writes. A database failure's cause goes to the
// log, under the request id the client sees, never into the response.
void set_unavailable(response& res, const std::optional<user_reply>& r, std::string_view request_id) {
    if (r && r->status == outcome::unavailable)
        app::log_event(spdlog::level::err, "database error", {{"request_id", request_id}, {"error", r->error}});
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

asio::awaitable<void> handler::get_user(exchange& x) {
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
    const auto r = co_await await_reply([&](auto done) { users_.get(*id, std::move(done)); },
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

asio::awaitable<void> handler::create_user(exchange& x) {
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
    const auto r = co_await await_reply([&](auto done) { users_.create(std::move(u), std::move(done)); },
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

void handler::delete_cache(exchange& x) {
    auto& res = x.res;
    if (!cfg_.admin_token.empty()) {
        if (x.req.count(field::authorization) > 1) {
            set_problem(res, 400, "more than one Authorization field");
            return;
        }
        const auto auth = x.req.find(field::authorization);
        const auto token = bearer_token(auth == x.req.end() ? std::string_view{} : std::string_view(auth->value()));
        if (!token) {
            res.set(field::www_authenticate, "Bearer");
            set_problem(res, 401, "DELETE /cache needs Authorization: Bearer <admin token>");
            return;
        }
        if (!constant_time_equal(cfg_.admin_token, *token)) {
            set_problem(res, 403, "the admin token is not valid");
            return;
        }
    }
    set_json(res, 200, core::shared_bytes(R"({"cleared":)" + std::to_string(users_.clear_cache()) + "}"));
}

void handler::cache_status(exchange& x) {
    const auto s = users_.stats();
    const auto lookups = s.hits + s.misses;
    nlohmann::ordered_json j;
    j["cache"] = {{"size", s.cache.size},
                  {"capacity", s.cache.capacity},
                  {"hits", s.hits},
                  {"misses", s.misses},
                  {"hit_rate", lookups ? static_cast<double>(s.hits) / static_cast<double>(lookups) : 0.0},
                  {"evictions", s.cache.evictions},
                  {"expirations", s.cache.expirations},
                  {"ttl_seconds", seconds(cfg_.cache_ttl_ms)},
                  {"cleanup_interval_seconds", seconds(cfg_.cache_cleanup_interval_ms)}};
    j["coalescing"] = {{"inflight", s.inflight}, {"coalesced_requests", s.coalesced}};
    j["db"] = {
        {"reads", s.reads}, {"writes", s.writes}, {"queue_depth", s.queue_depth}, {"latency_ms", cfg_.db_latency_ms}};
    j["requests"] = {{"total", stats_.total()},
                     {"rate_limited", stats_.rate_limited_total()},
                     {"average_response_time_ms", stats_.average_ms()}};
    set_json(x.res, 200, core::shared_bytes(j.dump()));
}

void handler::render_metrics(exchange& x) {
    const auto s = users_.stats();
    std::string out;
    out.reserve(4096);
    stats_.render(out);
    auto add = [&out](const char* name, const char* type, const char* help, double v) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " ";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.9g", v);
        out += buf;
        out += "\n";
    };
    add("userapi_cache_hits_total", "counter", "GET /users/{id} answered from the cache.", static_cast<double>(s.hits));
    add("userapi_cache_misses_total", "counter", "GET /users/{id} not answered from the cache.",
        static_cast<double>(s.misses));
    add("userapi_cache_evictions_total", "counter", "Cache entries removed for capacity.",
        static_cast<double>(s.cache.evictions));
    add("userapi_cache_expirations_total", "counter", "Cache entries removed because their TTL passed.",
        static_cast<double>(s.cache.expirations));
    add("userapi_cache_entries", "gauge", "Users in the cache.", static_cast<double>(s.cache.size));
    add("userapi_cache_capacity", "gauge", "Most users the cache holds.", static_cast<double>(s.cache.capacity));
    add("userapi_coalesced_requests_total", "counter", "Requests that waited for a read another request started.",
        static_cast<double>(s.coalesced));
    add("userapi_inflight_reads", "gauge", "Database reads in flight.", static_cast<double>(s.inflight));
    add("userapi_db_reads_total", "counter", "Database reads executed.", static_cast<double>(s.reads));
    add("userapi_db_writes_total", "counter", "Database writes executed.", static_cast<double>(s.writes));
    add("userapi_db_queue_depth", "gauge", "Database operations waiting or running.",
        static_cast<double>(s.queue_depth));
    add("userapi_rate_limit_clients", "gauge", "Client buckets held by the rate limiter.",
        limiter_ ? static_cast<double>(limiter_->size()) : 0.0);
    add("userapi_open_connections", "gauge", "Client connections open now.",
        static_cast<double>(state_.connections.load()));
    out +=
        "# HELP userapi_build_info The running build; always 1.\n# TYPE userapi_build_info gauge\n"
        "userapi_build_info{version=\"" USERAPI_VERSION "\"} 1\n";
    render_process_metrics(out);
    x.res.result(200);
    x.res.body() = core::shared_bytes(out);
    x.res.set(field::content_type, "text/plain; version=0.0.4; charset=utf-8");
}

void handler::finish(exchange& x) {
    auto& res = x.res;
    res.set(field::date, http_date());
    res.set("X-Request-Id", x.id);
    const auto took = clock_type::now() - x.started;
    stats_.record(x.match.which, label_of(x.req.method()), res.result_int(), took);
    if (app::log_enabled(spdlog::level::info)) {
        // The client the rate limiter sees (X-Forwarded-For from a trusted proxy), and the peer.
        const auto peer = x.peer.to_string();
        std::string client = peer;
        if (clients_.is_trusted(x.peer))
            client =
                (x.client ? *x.client : clients_.resolve(x.peer, joined_field(x.req, "X-Forwarded-For"))).to_string();
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.3f", std::chrono::duration<double, std::milli>(took).count());
        app::log_event(spdlog::level::info, "access",
                       {{"request_id", x.id},
                        {"method", x.req.method_string()},
                        {"path", x.req.target()},
                        {"status", std::to_string(res.result_int()), true},
                        {"duration_ms", ms, true},
                        {"client", client},
                        {"peer", peer}});
    }
}

}  // namespace userapi::http
