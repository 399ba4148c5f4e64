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
#include "userapi/store/pg_connection.hpp"
#include "userapi/store/postgres_user_repository.hpp"

namespace userapi::store {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The heartbeat: a check this often, answered within this (noticed within 2 s, see the header).
constexpr auto kCheckEvery = std::chrono::milliseconds(500);
constexpr auto kAnswerWithin = std::chrono::milliseconds(1250);
constexpr auto kHealthyWithin = std::chrono::seconds(2);

struct postgres_watch::impl {
    impl(std::string c, events e, std::chrono::milliseconds op)
        : conninfo(std::move(c)), on(std::move(e)), operation_timeout(op) {}

    asio::awaitable<void> run();
    asio::awaitable<bool> connect(pg_connection& conn);
    asio::awaitable<void> serve(pg_connection& conn, bool first);
    void notified(const PGnotify& n);

    std::string conninfo;
    events on;
    std::chrono::milliseconds operation_timeout;
    asio::io_context ioc{1};  // run by `thread` alone
    std::thread thread;
    std::atomic<bool> stopping{false};
    std::atomic<bool> listening{false};
    std::atomic<std::int64_t> last_ok_ns{0};  // steady_clock time of the last answered check
    mutable std::mutex mu;
    std::unordered_set<int> own_pids;  // guarded by mu
    stats counters;                    // guarded by mu
};

postgres_watch::postgres_watch(std::string conninfo, events e, std::chrono::milliseconds operation_timeout)
    : impl_(std::make_unique<impl>(std::move(conninfo), std::move(e), operation_timeout)) {}

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
    return impl_->listening.load() && steady_clock::now() - last < kHealthyWithin;
}

postgres_watch::stats postgres_watch::snapshot() const {
    std::lock_guard lock(impl_->mu);
    return impl_->counters;
}

asio::awaitable<void> postgres_watch::impl::run() {
    asio::steady_timer pause(ioc);
    auto backoff = std::chrono::milliseconds(100);
    for (bool first = true; !stopping; first = false) {
        {
            pg_connection conn(conninfo, operation_timeout);  // closed however this frame ends
            const std::string listen = std::string("LISTEN ") + postgres_user_repository::kChannel;
            if (co_await connect(conn) && PQsendQuery(conn.get(), listen.c_str()) == 1) co_await serve(conn, first);
            if (listening.exchange(false)) {
                if (on.listening) on.listening(false);
                if (!stopping) {
                    std::string why = "no answer to the heartbeat";
                    if (!conn.connected()) why = one_line(conn.get() ? PQerrorMessage(conn.get()) : "");
                    log::log_event(spdlog::level::warn, "lost the store's notification channel; reads bypass the cache",
                                   {{"store", postgres_user_repository::redacted(conninfo)}, {"error", why}});
                }
                backoff = std::chrono::milliseconds(100);
            }
        }
        if (stopping) co_return;
        pause.expires_after(backoff);
        co_await pause.async_wait(use_tuple);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
}

// libpq's connect, driven by waits on this io_context: the thread never blocks on the store.
asio::awaitable<bool> postgres_watch::impl::connect(pg_connection& conn) {
    if (!conn.start_connect()) co_return false;
    const auto deadline = steady_clock::now() + operation_timeout;
    asio::steady_timer timer(ioc);
    auto st = PGRES_POLLING_WRITING;  // as libpq says to begin
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED || stopping) co_return false;
        if (const int fd = PQsocket(conn.get()); fd >= 0) {
            const int own = ::dup(fd);  // ours to close; libpq keeps its own
            if (own < 0) co_return false;
            asio::posix::stream_descriptor socket(ioc, own);
            timer.expires_at(deadline);
            const auto want = st == PGRES_POLLING_READING ? asio::posix::stream_descriptor::wait_read
                                                          : asio::posix::stream_descriptor::wait_write;
            const auto ready = co_await (socket.async_wait(want, use_tuple) || timer.async_wait(use_tuple));
            if (ready.index() == 1) co_return false;  // no answer in time
        }
        st = PQconnectPoll(conn.get());
    }
    co_return PQsetnonblocking(conn.get(), 1) == 0;
}

// Until the connection is lost or the store stops answering: the LISTEN's answer, then
// notifications as they arrive and a check every kCheckEvery.
asio::awaitable<void> postgres_watch::impl::serve(pg_connection& conn, bool first) {
    PGconn* c = conn.get();
    const int own = ::dup(PQsocket(c));  // ours to close; libpq keeps its own
    if (own < 0) co_return;
    asio::posix::stream_descriptor socket(ioc, own);
    asio::steady_timer timer(ioc);
    bool busy = true;  // a command is out: the LISTEN, then each check
    auto answer_by = steady_clock::now() + operation_timeout;
    auto next_check = steady_clock::now();
    while (!stopping) {
        if (PQflush(c) < 0) co_return;
        const auto now = steady_clock::now();
        if (busy && now >= answer_by) co_return;  // the store stopped answering
        if (!busy && now >= next_check) {
            if (PQsendQuery(c, "SELECT 1") != 1) co_return;
            busy = true;
            answer_by = now + kAnswerWithin;
            next_check = now + kCheckEvery;
            continue;
        }
        timer.expires_at(busy ? answer_by : next_check);
        const auto ready = co_await (socket.async_wait(asio::posix::stream_descriptor::wait_read, use_tuple) ||
                                     timer.async_wait(use_tuple));
        if (ready.index() == 1) continue;
        if (std::get<0>(std::get<0>(ready))) co_return;  // the descriptor failed
        if (PQconsumeInput(c) != 1) co_return;           // lost: the server's FATAL, an end of file, a reset
        while (busy && PQisBusy(c) == 0) {
            PGresult* r = PQgetResult(c);
            if (!r) {
                busy = false;
                last_ok_ns = steady_clock::now().time_since_epoch().count();
                if (!listening.exchange(true)) {
                    if (!first) {
                        std::lock_guard lock(mu);
                        ++counters.reconnects;
                    }
                    if (on.listening) on.listening(true);
                    log::log_event(spdlog::level::info, "listening for other instances' writes", {});
                }
                break;
            }
            const auto st = PQresultStatus(r);
            PQclear(r);
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) co_return;
        }
        while (PGnotify* n = PQnotifies(c)) {
            notified(*n);
            PQfreemem(n);
        }
        if (PQstatus(c) != CONNECTION_OK) co_return;
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
