#include "userapi/store/postgres_watch.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "userapi/log/log.hpp"
#include "userapi/store/notification.hpp"
#include "userapi/store/postgres_user_repository.hpp"

namespace userapi::store {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct postgres_watch::impl {
    impl(std::string c, events e) : conninfo(std::move(c)), on(std::move(e)) {}

    asio::awaitable<void> run();
    asio::awaitable<void> serve(PGconn* conn);
    void notified(const PGnotify& n);

    std::string conninfo;
    events on;
    asio::io_context ioc{1};  // run by `thread` alone
    std::thread thread;
    std::atomic<bool> stopping{false};
    std::atomic<bool> listening{false};
    std::atomic<std::int64_t> last_ok_ns{0};  // steady_clock time of the last answered check
    mutable std::mutex mu;
    std::unordered_set<int> own_pids;  // guarded by mu
    stats counters;                    // guarded by mu
};

postgres_watch::postgres_watch(std::string conninfo, events e)
    : impl_(std::make_unique<impl>(std::move(conninfo), std::move(e))) {}

postgres_watch::~postgres_watch() { stop(); }

void postgres_watch::start() {
    asio::co_spawn(impl_->ioc, impl_->run(), asio::detached);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

void postgres_watch::stop() {
    impl_->stopping = true;
    impl_->ioc.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

void postgres_watch::own_pid(int old_pid, int new_pid) {
    std::lock_guard lock(impl_->mu);
    if (old_pid) impl_->own_pids.erase(old_pid);
    if (new_pid) impl_->own_pids.insert(new_pid);
}

bool postgres_watch::healthy() const {
    const auto last = steady_clock::time_point(steady_clock::duration(impl_->last_ok_ns.load()));
    return impl_->listening.load() && steady_clock::now() - last < std::chrono::seconds(3);
}

postgres_watch::stats postgres_watch::snapshot() const {
    std::lock_guard lock(impl_->mu);
    return impl_->counters;
}

asio::awaitable<void> postgres_watch::impl::run() {
    asio::steady_timer pause(ioc);
    auto backoff = std::chrono::milliseconds(100);
    for (bool first = true; !stopping; first = false) {
        // Finished however this frame ends, also when the io_context is destroyed mid-wait.
        const std::unique_ptr<PGconn, void (*)(PGconn*)> owned(PQconnectdb(conninfo.c_str()), PQfinish);
        PGconn* conn = owned.get();
        bool up = PQstatus(conn) == CONNECTION_OK;
        if (up) {
            PGresult* r = PQexec(conn, (std::string("LISTEN ") + postgres_user_repository::kChannel).c_str());
            up = PQresultStatus(r) == PGRES_COMMAND_OK && PQsetnonblocking(conn, 1) == 0;
            PQclear(r);
        }
        if (up) {
            if (!first) {
                std::lock_guard lock(mu);
                ++counters.reconnects;
            }
            last_ok_ns = steady_clock::now().time_since_epoch().count();
            listening = true;
            if (on.listening) on.listening(true);
            log::log_event(spdlog::level::info, "listening for other instances' writes", {});
            backoff = std::chrono::milliseconds(100);
            co_await serve(conn);
            listening = false;
            if (on.listening) on.listening(false);
            if (!stopping)
                log::log_event(spdlog::level::warn, "lost the store's notification channel; reads bypass the cache",
                               {{"store", postgres_user_repository::redacted(conninfo)}});
        }
        if (stopping) co_return;
        pause.expires_after(backoff);
        co_await pause.async_wait(use_tuple);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
}

// Until the connection is lost: notifications as they arrive, a check every second.
asio::awaitable<void> postgres_watch::impl::serve(PGconn* conn) {
    asio::posix::stream_descriptor socket(ioc, ::dup(PQsocket(conn)));  // ours to close; libpq keeps its own
    asio::steady_timer tick(ioc);
    bool checking = false;
    auto check_sent = steady_clock::now();
    auto next_check = steady_clock::now();
    while (!stopping) {
        const auto now = steady_clock::now();
        if (checking && now - check_sent > std::chrono::seconds(3)) co_return;  // half-open: no answer
        if (!checking && now >= next_check) {
            if (PQsendQuery(conn, "SELECT 1") != 1) co_return;
            checking = true;
            check_sent = now;
            next_check = now + std::chrono::seconds(1);
        }
        if (PQflush(conn) < 0) co_return;
        tick.expires_after(std::chrono::milliseconds(250));
        auto ready = co_await (socket.async_wait(asio::posix::stream_descriptor::wait_read, use_tuple) ||
                               tick.async_wait(use_tuple));
        if (ready.index() == 0) {
            if (std::get<0>(std::get<0>(ready))) co_return;  // the descriptor failed
            if (PQconsumeInput(conn) != 1) co_return;
            while (PGnotify* n = PQnotifies(conn)) {
                notified(*n);
                PQfreemem(n);
            }
            while (checking && PQisBusy(conn) == 0) {
                PGresult* r = PQgetResult(conn);
                if (!r) {
                    checking = false;
                    last_ok_ns = steady_clock::now().time_since_epoch().count();
                    break;
                }
                PQclear(r);
            }
        }
        if (PQstatus(conn) != CONNECTION_OK) co_return;
    }
}

// The payload's forms are in notification.hpp.
void postgres_watch::impl::notified(const PGnotify& n) {
    {
        std::lock_guard lock(mu);
        if (own_pids.count(n.be_pid)) return;  // our own write: the cache already has it
    }
    const auto parsed = parse_notification(n.extra ? n.extra : "");
    if (!parsed) {
        log::log_event(spdlog::level::warn, "ignored a notification of unknown form", {});
        return;
    }
    {
        std::lock_guard lock(mu);
        ++counters.notifications;
        if (parsed->committed) {
            const double arrived =
                std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
            const double lag = std::max(0.0, arrived - *parsed->committed);
            ++counters.lag_count;
            counters.lag_sum_seconds += lag;
            for (std::size_t b = 0; b < kLagBuckets.size(); ++b)
                if (lag <= kLagBuckets[b]) ++counters.lag_buckets[b];
        }
    }
    switch (parsed->kind) {
        case notification::cleared:
            if (on.cleared) on.cleared();
            break;
        case notification::written:
        case notification::deleted:
        case notification::unversioned:
            if (on.changed) on.changed(*parsed);
            break;
    }
}

}  // namespace userapi::store
