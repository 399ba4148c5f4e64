#include "userapi/app/server.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "userapi/auth/authenticator.hpp"
#include "userapi/core/client_resolver.hpp"
#include "userapi/core/redis_uri.hpp"
#include "userapi/http/handler.hpp"
#include "userapi/http/prometheus_writer.hpp"
#include "userapi/http/session.hpp"
#include "userapi/limit/identity_rate_limiter.hpp"
#include "userapi/limit/redis_rate_limiter.hpp"
#include "userapi/log/log.hpp"
#include "userapi/service/db_queue.hpp"
#include "userapi/service/user_cache.hpp"
#include "userapi/service/user_service.hpp"
#include "userapi/store/postgres_user_repository.hpp"
#include "userapi/store/postgres_watch.hpp"
#include "userapi/store/sqlite_user_repository.hpp"

namespace userapi::app {

namespace asio = boost::asio;
using log::log_enabled;
using log::log_event;
using log::log_line;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

core::client_resolver make_resolver(const config::settings& cfg) {
    std::vector<core::cidr> trusted;
    for (const auto& c : cfg.trusted_proxies) trusted.push_back(*core::parse_cidr(c));
    return core::client_resolver(std::move(trusted), cfg.ipv6_prefix);
}

core::ip_address peer_address(const tcp::endpoint& ep) {
    core::ip_address a;
    const auto addr = ep.address().is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, ep.address().to_v4())
                                           : ep.address().to_v6();
    const auto b = addr.to_bytes();
    std::copy(b.begin(), b.end(), a.bytes.begin());
    return a;
}

// Each connection is a descriptor: make room for --max-connections plus the listener, the
// database files and the logs. Returns how many connections fit under the limit we got.
std::size_t fit_descriptor_limit(std::size_t max_connections) {
    constexpr rlim_t kReserve = 128;
    const rlim_t want = static_cast<rlim_t>(max_connections) + kReserve;
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return max_connections;
    if (rl.rlim_cur < want) {
        const rlim_t before = rl.rlim_cur;
        rlimit raised = rl;
        raised.rlim_cur = std::min(want, rl.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
        if (rl.rlim_cur > before)
            log_line(spdlog::level::info, "raised the open-file limit from " + std::to_string(before) + " to " +
                                              std::to_string(rl.rlim_cur));
    }
    if (rl.rlim_cur >= want) return max_connections;
    const std::size_t fit = rl.rlim_cur > kReserve ? static_cast<std::size_t>(rl.rlim_cur - kReserve) : 1;
    log_line(spdlog::level::warn, "the open-file limit (" + std::to_string(rl.rlim_cur) + ", hard " +
                                      std::to_string(rl.rlim_max) + ") is too low for --max-connections " +
                                      std::to_string(max_connections) + ": connections beyond " + std::to_string(fit) +
                                      " are refused");
    return fit;
}

// Runs `ioc` until it is stopped. A handler that throws is logged and the loop goes on: one
// failed operation must never end the process (sessions catch their own; this is the net).
void run_guarded(asio::io_context& ioc) {
    for (;;) {
        try {
            ioc.run();
            return;
        } catch (const std::exception& e) {
            log_event(spdlog::level::err, "a handler failed; serving on", {{"error", e.what()}});
        } catch (...) {
            log_event(spdlog::level::err, "a handler failed; serving on", {{"error", "unknown exception"}});
        }
    }
}

core::bucket_policy make_policy(const config::settings& cfg) {
    return {cfg.rate_limit_capacity, cfg.rate_limit_refill_per_minute / 60.0};
}

auth::options make_auth_options(const config::settings& cfg) {
    auth::options o;
    o.api_keys_file = cfg.api_keys_file;
    o.jwks = cfg.jwt_jwks;
    o.rules = {cfg.jwt_issuer, cfg.jwt_audience, cfg.jwt_leeway_s};
    o.jwks_refresh = std::chrono::seconds(cfg.jwt_jwks_refresh_s);
    o.admin_token = cfg.admin_token;
    return o;
}

}  // namespace

// Members are declared in the order they may be destroyed last to first. After the threads
// are joined, destruction runs bottom-up: first whatever holds completion handlers bound to the
// HTTP io_context (the DB queue's pending operations, the single-flight waiters, the acceptor
// and signal set), then the DB io_context, then the HTTP io_context itself, whose coroutine
// frames still refer to `state` as they unwind.
struct server::impl {
    impl(config::settings c, std::unique_ptr<service::user_repository> r, const core::clock* clk)
        : cfg(std::move(c)),
          clock(clk ? *clk : system_clock),
          http_iocs(make_contexts(cfg.effective_threads())),
          db_ioc(static_cast<int>(cfg.db_concurrency)),
          watch(make_watch(cfg, users_ptr)),
          repos(make_repos(cfg, std::move(r), watch.get())),
          cache(clock, cfg.cache_capacity,
                {std::chrono::milliseconds(cfg.cache_ttl_ms), std::chrono::milliseconds(cfg.cache_negative_ttl_ms),
                 std::chrono::milliseconds(cfg.cache_stale_ms), cfg.cache_negative_capacity}),
          db(db_ioc, clock, std::chrono::milliseconds(cfg.db_latency_ms), cfg.db_queue_limit, cfg.db_concurrency,
             cfg.db_batch_reads),
          users(cache, db, raw(repos), clock, std::chrono::milliseconds(cfg.request_timeout_ms)),
          watchdog(std::chrono::milliseconds(cfg.db_read_timeout_ms)),
          limiter(clock, make_policy(cfg), cfg.max_clients),
          identities(clock, cfg.max_clients),
          shared_limiter(make_shared_limiter()),
          resolver(make_resolver(cfg)),
          authenticator(make_auth_options(cfg), clock),
          handler(cfg, users, cfg.rate_limit_enabled ? &limiter : nullptr, resolver, stats, state,
                  {instance, cfg.uses_postgresql() ? "postgresql" : "sqlite", shared_limiter ? "redis" : "local",
                   [this] { return unready(); }, [this](http::prometheus_writer& w) { store_metrics(w); }},
                  shared_limiter.get(), {&authenticator, &identities}) {
        users_ptr = &users;
        users.bound_reads(watchdog);
    }

    // Buckets in Redis: one connection per I/O thread, this instance's table as the fallback.
    std::unique_ptr<limit::redis_rate_limiter> make_shared_limiter() {
        if (cfg.rate_limit_store.empty() || !cfg.rate_limit_enabled) return nullptr;
        std::vector<asio::io_context*> iocs;
        for (auto& c : http_iocs) iocs.push_back(c.get());
        const auto fallback = cfg.rate_limit_store_fallback == "open"     ? limit::store_fallback::open
                              : cfg.rate_limit_store_fallback == "closed" ? limit::store_fallback::closed
                                                                          : limit::store_fallback::local;
        return std::make_unique<limit::redis_rate_limiter>(
            iocs, *core::parse_redis_uri(cfg.rate_limit_store), make_policy(cfg), clock,
            std::chrono::milliseconds(cfg.rate_limit_store_timeout_ms), fallback, limiter, cfg.max_clients,
            cfg.rate_limit_store_pipelining, cfg.rate_limit_store_denial_cache, &identities);
    }

    void store_metrics(http::prometheus_writer& w) const {
        const auto d = [](auto v) { return static_cast<double>(v); };
        w.counter("userapi_rate_limit_store_errors_total",
                  "Rate-limit decisions the store did not make in time (or was down for); the fallback made them.",
                  shared_limiter ? d(shared_limiter->errors()) : 0.0);
        w.family("userapi_store_reconnects_total", "counter", "Connections to a shared store made again after a loss.");
        if (watch)
            w.sample("userapi_store_reconnects_total", {{"store", "postgresql"}}, d(watch->snapshot().reconnects));
        if (shared_limiter)
            w.sample("userapi_store_reconnects_total", {{"store", "redis"}}, d(shared_limiter->reconnects()));
        w.family("userapi_auth_jwks_refreshes_total", "counter",
                 "Loads of the JWK Set after the start (its URL fetched, or its file reread on SIGHUP), by result.");
        w.sample("userapi_auth_jwks_refreshes_total", {{"result", "ok"}}, d(authenticator.jwks_refreshes(true)));
        w.sample("userapi_auth_jwks_refreshes_total", {{"result", "error"}}, d(authenticator.jwks_refreshes(false)));
        w.family("userapi_auth_credentials", "gauge",
                 "Credentials held now: API keys of the key file, keys of the JWK Set.");
        w.sample("userapi_auth_credentials", {{"kind", "api_key"}}, d(authenticator.api_key_count()));
        w.sample("userapi_auth_credentials", {{"kind", "jwk"}}, d(authenticator.jwk_count()));
        w.gauge("userapi_cache_coherent",
                "1 while this instance hears of other instances' writes (or shares its store with none).",
                users.coherent() ? 1.0 : 0.0);
        if (!watch) return;
        const auto s = watch->snapshot();
        w.counter("userapi_store_notifications_total", "Writes of other instances heard of.", d(s.notifications));
        w.family("userapi_coherence_lag_seconds", "histogram",
                 "From another instance's commit to its notification's arrival here.");
        char le[32];
        for (std::size_t b = 0; b < s.lag_buckets.size(); ++b) {
            std::snprintf(le, sizeof le, "%g", store::postgres_watch::kLagBuckets[b]);
            w.sample("userapi_coherence_lag_seconds_bucket", {{"le", le}}, d(s.lag_buckets[b]));
        }
        w.sample("userapi_coherence_lag_seconds_bucket", {{"le", "+Inf"}}, d(s.lag_count));
        w.sample("userapi_coherence_lag_seconds_sum", s.lag_sum_seconds);
        w.sample("userapi_coherence_lag_seconds_count", d(s.lag_count));
    }

    // A PostgreSQL store is shared: the watch hears of other instances' writes.
    static std::unique_ptr<store::postgres_watch> make_watch(const config::settings& cfg,
                                                             service::user_service*& users) {
        if (!cfg.uses_postgresql()) return nullptr;
        return std::make_unique<store::postgres_watch>(
            cfg.db_path,
            store::postgres_watch::events{
                [&users](const store::notification& n) {
                    if (n.kind == store::notification::unversioned)
                        users->remote_write(n.id);
                    else
                        users->remote_write(n.id, n.version, n.kind == store::notification::deleted);
                },
                [&users] { users->remote_clear(); }, [&users](bool on) { users->set_coherent(on); }},
            std::chrono::milliseconds(cfg.db_operation_timeout_ms));
    }
    // One repository per DB-queue slot: a connection each (SQLite: one).
    static std::vector<std::unique_ptr<service::user_repository>> make_repos(
        const config::settings& cfg, std::unique_ptr<service::user_repository> given, store::postgres_watch* watch) {
        std::vector<std::unique_ptr<service::user_repository>> out;
        if (given) {
            out.push_back(std::move(given));
        } else if (cfg.uses_postgresql()) {
            for (std::size_t i = 0; i < cfg.db_concurrency; ++i)
                out.push_back(std::make_unique<store::postgres_user_repository>(
                    cfg.db_path, std::chrono::milliseconds(cfg.db_connect_timeout_ms),
                    [watch](int old_pid, int new_pid) { watch->own_pid(old_pid, new_pid); },
                    std::chrono::milliseconds(cfg.db_operation_timeout_ms)));
        } else {
            out.push_back(std::make_unique<store::sqlite_user_repository>(cfg.db_path));
        }
        return out;
    }
    // A repository a test hands in serves every slot.
    std::vector<service::user_repository*> raw(const std::vector<std::unique_ptr<service::user_repository>>& v) const {
        std::vector<service::user_repository*> out;
        for (const auto& r : v) out.push_back(r.get());
        while (out.size() < cfg.db_concurrency) out.push_back(v.front().get());
        return out;
    }
    // What keeps this instance from being ready: one reason per store that did not answer.
    std::vector<std::string> unready() const {
        std::vector<std::string> reasons;
        if (watch && !watch->healthy()) reasons.push_back("users store (postgresql) not answering");
        if (shared_limiter && !shared_limiter->healthy()) reasons.push_back("rate-limit store (redis) not answering");
        return reasons;
    }

    ~impl() {
        stop_all();
        join();
    }

    static std::vector<std::unique_ptr<asio::io_context>> make_contexts(unsigned n) {
        std::vector<std::unique_ptr<asio::io_context>> v;
        for (unsigned i = 0; i < n; ++i) v.push_back(std::make_unique<asio::io_context>(1));
        return v;
    }
    // Runs the listener, the signal set, the sweeper and the drain.
    asio::io_context& main_context() { return *http_iocs.front(); }
    void stop_all() {
        for (auto& c : http_iocs) c->stop();
        db_ioc.stop();
    }

    void join() {
        for (auto& t : threads)
            if (t.joinable()) t.join();
        for (auto& t : db_threads)
            if (t.joinable()) t.join();
        if (watch) watch->stop();
    }

    asio::awaitable<void> listen();
    template <class Socket>
    void refuse(Socket& socket, bool per_client_limit);
    asio::awaitable<void> sweep();
    asio::awaitable<void> purge_keys();
    asio::awaitable<void> drain();
    void begin_drain();

    config::settings cfg;
    core::system_clock system_clock;
    const core::clock& clock;
    http::server_state state;
    http::metrics stats;
    // One io_context per I/O thread: a connection lives on one of them and never changes
    // threads, so its handlers need no strand and the threads share no scheduler queue.
    std::vector<std::unique_ptr<asio::io_context>> http_iocs;
    std::atomic<std::size_t> next_context{0};
    // Run by db_threads, one per DB-queue slot: only they touch the repositories once started.
    asio::io_context db_ioc;
    service::user_service* users_ptr = nullptr;                    // for the watch's events, set once users exists
    std::unique_ptr<store::postgres_watch> watch;                  // PostgreSQL only; its own thread
    std::vector<std::unique_ptr<service::user_repository>> repos;  // one per DB-queue slot
    service::user_cache cache;
    service::db_queue db;
    service::user_service users;
    // --db-read-timeout-ms; its own thread. Destroyed before `users`, whose reads it watches.
    service::read_watchdog watchdog;
    limit::local_rate_limiter limiter;
    limit::identity_rate_limiter identities;  // authenticated identities' buckets
    std::unique_ptr<limit::redis_rate_limiter>
        shared_limiter;  // --rate-limit-store; its clients live on the I/O threads
    core::client_resolver resolver;
    auth::authenticator authenticator;  // its own thread reads the key file and the JWK Set
    http::handler handler;
    std::unique_ptr<tcp::acceptor> acceptor;  // used only on the main context's thread
    std::unique_ptr<asio::signal_set> signals;
    std::unique_ptr<asio::signal_set> hangups;  // SIGHUP: the credentials again
    void on_hangup();
    std::string instance;  // --instance-name, or host:port once bound
    std::vector<std::thread> threads;
    std::vector<std::thread> db_threads;
    unsigned short bound_port = 0;
    std::size_t connection_limit = 0;  // --max-connections, or fewer if descriptors are short
    std::mutex per_client_mu;
    // Open connections by client key, for peers that are not trusted proxies: taken by the
    // listener, given back by each session's end, on any thread. Guarded by per_client_mu.
    std::unordered_map<core::ip_address, std::size_t, core::ip_address_hash> per_client;
    bool take_client_slot(const core::ip_address& key);
    void give_client_slot(const core::ip_address& key);
};

asio::awaitable<void> server::impl::listen() {
    for (;;) {
        auto& target = *http_iocs[next_context.fetch_add(1, std::memory_order_relaxed) % http_iocs.size()];
        http::tcp_socket socket(target.get_executor());  // lives on its I/O thread from the start
        auto [ec] = co_await acceptor->async_accept(socket, use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
            // Out of descriptors or a connection reset before accept: log, pause, go on.
            log_event(spdlog::level::err, "accept failed", {{"error", ec.message()}});
            asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        const auto remote = socket.remote_endpoint(ec);
        if (ec) {  // reset before we got to it
            socket.close(ec);
            continue;
        }
        if (state.connections.load() >= connection_limit || state.draining.load()) {
            refuse(socket, false);
            continue;
        }
        const auto peer = peer_address(remote);
        std::optional<core::ip_address> counted;  // behind a trusted proxy, many clients share a peer
        if (!resolver.is_trusted(peer)) {
            counted = core::client_key(peer, cfg.ipv6_prefix);
            if (!take_client_slot(*counted)) {
                refuse(socket, true);
                continue;
            }
        }
        stats.connection_opened();
        socket.set_option(tcp::no_delay(true), ec);
        state.connections.fetch_add(1);
        http::spawn_session(std::move(socket), peer, handler, cfg, state, [this, counted] {
            state.connections.fetch_sub(1);
            if (counted) give_client_slot(*counted);
        });
    }
}

bool server::impl::take_client_slot(const core::ip_address& key) {
    std::lock_guard lock(per_client_mu);
    auto& n = per_client[key];
    if (n >= cfg.max_connections_per_client) return false;
    ++n;
    return true;
}

void server::impl::give_client_slot(const core::ip_address& key) {
    std::lock_guard lock(per_client_mu);
    const auto it = per_client.find(key);
    if (it != per_client.end() && --it->second == 0) per_client.erase(it);
}

// Over --max-connections or --max-connections-per-client: a short 503 if the socket takes it at once, then close. Never
// waits, so a flood of connections costs one accept and one close each.
template <class Socket>
void server::impl::refuse(Socket& socket, bool per_client_limit) {
    static const auto busy = [](std::string_view detail) {
        const std::string body = R"({"type":"about:blank","title":"Service Unavailable","status":503,"detail":")" +
                                 std::string(detail) + "\"}";
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\n"
               "Connection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
    };
    static const std::string all_busy = busy("too many open connections");
    static const std::string client_busy = busy("too many open connections from this client");
    const std::string& kBusy = per_client_limit ? client_busy : all_busy;
    stats.connection_refused();
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(kBusy), ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
    socket.close(ec);
}

asio::awaitable<void> server::impl::sweep() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(std::chrono::milliseconds(cfg.cache_cleanup_interval_ms));
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || state.draining.load()) co_return;
        const auto expired = users.sweep_cache();
        const auto reclaimed = limiter.reclaim_idle() + identities.reclaim_idle();
        if (log_enabled(spdlog::level::debug))
            log_event(spdlog::level::debug, "sweep",
                      {{"expired", std::to_string(expired), true}, {"idle_buckets", std::to_string(reclaimed), true}});
    }
}

// Idempotency-Keys older than their TTL are new again whether purged or not; purging only
// keeps the store small. Every half TTL, between 1 s and 5 min.
asio::awaitable<void> server::impl::purge_keys() {
    const auto ttl = std::chrono::seconds(cfg.idempotency_ttl_s);
    const auto every = std::clamp<std::chrono::milliseconds>(ttl / 2, std::chrono::seconds(1), std::chrono::minutes(5));
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(every);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || state.draining.load()) co_return;
        users.purge_keys(ttl, [](std::size_t purged) {
            if (purged && log_enabled(spdlog::level::debug))
                log_event(spdlog::level::debug, "purged idempotency keys", {{"keys", std::to_string(purged), true}});
        });
    }
}

asio::awaitable<void> server::impl::drain() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.drain_timeout_ms);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (state.active_requests.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(use_tuple);
    }
    const auto left = state.active_requests.load();
    if (left)
        log_line(spdlog::level::warn, "drain timeout: " + std::to_string(left) + " requests abandoned");
    else
        log_line(spdlog::level::info, "drained; stopping");
    stop_all();
}

// Reloads in the background (the authenticator's thread); a bad file keeps the old set.
void server::impl::on_hangup() {
    hangups->async_wait([this](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (authenticator.configured()) {
            log_line(spdlog::level::info, "SIGHUP: reloading the API keys and the JWK Set");
            authenticator.reload();
        } else {
            log_line(spdlog::level::info, "SIGHUP: no --api-keys or --jwt-jwks to reload");
        }
        on_hangup();
    });
}

void server::impl::begin_drain() {
    if (state.draining.exchange(true)) return;
    log_line(spdlog::level::info, "draining: no new connections; finishing requests in flight");
    asio::post(acceptor->get_executor(), [this] {
        boost::system::error_code ec;
        acceptor->close(ec);  // on the main context's thread, where listen() uses it
    });
    signals->cancel();
    hangups->cancel();
    asio::co_spawn(main_context(), drain(), asio::detached);
}

void check_credential_files(const config::settings& cfg) { auth::authenticator::check_files(make_auth_options(cfg)); }

server::server(config::settings cfg, std::unique_ptr<service::user_repository> repo, const core::clock* clock)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(repo), clock)) {}

server::~server() = default;

void server::start() {
    auto& m = *impl_;
    m.authenticator.start();  // an unusable key file or JWK Set: auth::setup_error, before anything else
    if (auto* pg = dynamic_cast<store::postgres_user_repository*>(m.repos.front().get())) pg->migrate();
    service::seed_users(*m.repos.front(), m.cfg.seed_users);
    m.connection_limit = fit_descriptor_limit(m.cfg.max_connections);
    const tcp::endpoint ep(asio::ip::make_address(m.cfg.address), m.cfg.port);
    m.acceptor = std::make_unique<tcp::acceptor>(m.main_context());
    // A port in use or an address not on this machine is the operator's to fix: one clear line
    // and exit 1 from main (Asio's own exception type is not a std::system_error).
    boost::system::error_code ec;
    m.acceptor->open(ep.protocol(), ec);
    if (!ec) m.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && ep.address().is_v6()) m.acceptor->set_option(asio::ip::v6_only(false), ec);
    if (!ec) m.acceptor->bind(ep, ec);
    if (!ec) m.acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw std::system_error(std::error_code(ec.value(), std::system_category()),
                                "cannot listen on " + m.cfg.address + " port " + std::to_string(m.cfg.port));
    m.bound_port = m.acceptor->local_endpoint().port();
    m.instance = m.cfg.instance_name;
    if (m.instance.empty()) {
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
        m.instance = std::string(host) + ":" + std::to_string(m.bound_port);
    }
    if (m.watch) {
        m.users.set_coherent(false);  // until the channel is up, the store answers every read
        m.watch->start();
    }
    if (m.shared_limiter) m.shared_limiter->start();

    m.signals = std::make_unique<asio::signal_set>(m.main_context(), SIGINT, SIGTERM);
    m.signals->async_wait([&m](const boost::system::error_code& ec, int) {
        if (!ec) m.begin_drain();
    });
    m.hangups = std::make_unique<asio::signal_set>(m.main_context(), SIGHUP);
    m.on_hangup();
    asio::co_spawn(m.acceptor->get_executor(), m.listen(), asio::detached);
    asio::co_spawn(m.main_context(), m.sweep(), asio::detached);
    asio::co_spawn(m.main_context(), m.purge_keys(), asio::detached);

    for (std::size_t i = 0; i < m.cfg.db_concurrency; ++i)
        m.db_threads.emplace_back([&m] {
            auto guard = asio::make_work_guard(m.db_ioc);
            run_guarded(m.db_ioc);
        });
    for (auto& ctx : m.http_iocs)
        m.threads.emplace_back([c = ctx.get()] {
            auto guard = asio::make_work_guard(*c);  // idle until its first connection; stop() ends it
            run_guarded(*c);
        });
}

unsigned short server::port() const { return impl_->bound_port; }

std::string server::url() const {
    const auto a = asio::ip::make_address(impl_->cfg.address);
    const std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
    return "http://" + host + ":" + std::to_string(port());
}

void server::stop() {
    asio::post(impl_->main_context(), [m = impl_.get()] { m->begin_drain(); });
}

void server::wait() { impl_->join(); }

}  // namespace userapi::app
