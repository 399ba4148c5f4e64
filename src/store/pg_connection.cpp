#include "userapi/store/pg_connection.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

#include "userapi/log/log.hpp"

namespace userapi::store {
namespace {

using std::chrono::steady_clock;

// Waits until libpq's socket is ready for `events` or the deadline passes: the events that
// are ready, 0 when none by the deadline. A failing poll() is reported as ready: libpq finds
// the error on its next call.
short wait_socket(PGconn* conn, short events, steady_clock::time_point deadline) {
    const int fd = PQsocket(conn);
    if (fd < 0) return events;
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady_clock::now()).count();
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, std::min<long long>(left, 60000))));
        if (n > 0) return p.revents ? p.revents : events;
        if (n < 0 && errno != EINTR) return events;
        if (n == 0 && left <= 0) return 0;
    }
}

spdlog::level::level_enum level_of(std::string_view severity) {
    if (severity == "DEBUG") return spdlog::level::debug;
    if (severity == "LOG" || severity == "INFO" || severity == "NOTICE") return spdlog::level::info;
    return spdlog::level::warn;  // WARNING, and the ERROR/FATAL/PANIC a server sends as it closes a connection
}

}  // namespace

std::string one_line(const char* text) {
    std::string out;
    for (const char* p = text ? text : ""; *p; ++p) {
        const bool blank = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
        if (!blank)
            out += *p;
        else if (!out.empty() && out.back() != ' ')
            out += ' ';
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// What the notice receiver saw on the current connection.
struct pg_connection::notices {
    bool fatal = false;  // the server said FATAL or PANIC: it is closing this connection

    // libpq's notices (and an idle connection's last FATAL) become log lines of the server's
    // own format instead of libpq's default, a raw line on stderr.
    static void receive(void* arg, const PGresult* r) {
        const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
        if (!severity) severity = PQresultErrorField(r, PG_DIAG_SEVERITY);
        const std::string_view sev = severity ? severity : "NOTICE";
        if (sev == "FATAL" || sev == "PANIC") static_cast<notices*>(arg)->fatal = true;
        const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const auto message = primary ? std::string(primary) : one_line(PQresultErrorMessage(r));
        log::log_event(level_of(sev), "postgresql says",
                       {{"severity", sev}, {"sqlstate", state ? state : ""}, {"message", message}});
    }
};

pg_result_ptr& pg_result_ptr::operator=(pg_result_ptr&& o) noexcept {
    if (this != &o) {
        PQclear(r_);
        r_ = o.release();
    }
    return *this;
}
pg_result_ptr::~pg_result_ptr() { PQclear(r_); }
bool pg_result_ptr::ok() const {
    const auto st = r_ ? PQresultStatus(r_) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}
int pg_result_ptr::rows() const { return r_ ? PQntuples(r_) : 0; }
const char* pg_result_ptr::value(int row, int col) const { return PQgetvalue(r_, row, col); }
std::string pg_result_ptr::sqlstate() const {
    const char* s = r_ ? PQresultErrorField(r_, PG_DIAG_SQLSTATE) : nullptr;
    return s ? s : "";
}

pg_connection::pg_connection(std::string conninfo, std::chrono::milliseconds operation_timeout)
    : conninfo_(std::move(conninfo)), operation_timeout_(operation_timeout), notices_(std::make_unique<notices>()) {}

pg_connection::~pg_connection() { close(); }

void pg_connection::close() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
}

bool pg_connection::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

int pg_connection::backend_pid() const { return conn_ ? PQbackendPID(conn_) : 0; }

void pg_connection::set_error(const std::string& what) {
    error_ = what;
    if (conn_) {
        const auto detail = one_line(PQerrorMessage(conn_));
        if (!detail.empty() && detail != what) error_ += ": " + detail;
    }
}

bool pg_connection::start_connect() {
    close();
    notices_->fatal = false;
    // Ours first, then the URI (expanded from dbname), whose own values override ours.
    const auto user_timeout = std::to_string(operation_timeout_.count());
    const auto connect_timeout = std::to_string(std::max<long long>(2, (operation_timeout_.count() + 999) / 1000));
    const char* keys[] = {"keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "connect_timeout",
                          "dbname",
                          nullptr};
    const char* values[] = {"1",    "2", "1", "3", user_timeout.c_str(), connect_timeout.c_str(), conninfo_.c_str(),
                            nullptr};
    conn_ = PQconnectStartParams(keys, values, 1);
    if (!conn_) {
        error_ = "out of memory";
        return false;
    }
    PQsetNoticeReceiver(conn_, notices::receive, notices_.get());
    if (PQstatus(conn_) == CONNECTION_BAD) {
        set_error("cannot connect");
        close();
        return false;
    }
    return true;
}

bool pg_connection::connect(time_point deadline) {
    if (!start_connect()) return false;
    auto st = PGRES_POLLING_WRITING;  // as libpq says to begin
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            set_error("cannot connect");
            close();
            return false;
        }
        if (!wait_socket(conn_, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline)) {
            error_ = "cannot connect: no answer within " + std::to_string(operation_timeout_.count()) + " ms";
            close();
            return false;
        }
        st = PQconnectPoll(conn_);
    }
    if (PQsetnonblocking(conn_, 1) != 0) {
        set_error("cannot connect");
        close();
        return false;
    }
    return true;
}

bool pg_connection::alive() {
    if (!conn_) return false;
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (PQstatus(conn_) == CONNECTION_OK && !notices_->fatal && ::poll(&p, 1, 0) > 0) {
        // Something arrived while idle: most likely the server's FATAL and end of file.
        if (PQconsumeInput(conn_)) {
            PQisBusy(conn_);  // parses it (a FATAL reaches the notice receiver)
            while (PGnotify* n = PQnotifies(conn_)) PQfreemem(n);
        }
    }
    if (PQstatus(conn_) == CONNECTION_OK && !notices_->fatal) return true;
    set_error("the server closed the connection");
    close();
    return false;
}

pg_reply pg_connection::timed_out() {
    cancel_in_background(conn_);
    error_ = "no answer within " + std::to_string(operation_timeout_.count()) + " ms; cancelled";
    close();
    return {pg_reply::status::timed_out, {}, error_};
}

pg_reply pg_connection::finish(time_point deadline) {
    using status = pg_reply::status;
    // Whatever libpq could not send at once.
    for (;;) {
        const int f = PQflush(conn_);
        if (f == 0) break;
        if (f < 0) {
            set_error("could not send");
            close();
            return {status::lost, {}, error_};
        }
        const short ready = wait_socket(conn_, POLLIN | POLLOUT, deadline);
        if (!ready) return timed_out();
        if ((ready & POLLIN) && !PQconsumeInput(conn_)) {
            set_error("the connection was lost");
            close();
            return {status::lost, {}, error_};
        }
    }
    pg_result_ptr last;
    bool broken = false;
    while (!broken && PQstatus(conn_) == CONNECTION_OK) {
        if (!PQisBusy(conn_)) {
            PGresult* r = PQgetResult(conn_);
            if (!r) break;            // the whole answer is in (ReadyForQuery)
            last = pg_result_ptr(r);  // as PQexec: the last result (after an error, the error)
            continue;
        }
        if (!wait_socket(conn_, POLLIN, deadline)) return timed_out();
        broken = !PQconsumeInput(conn_);
    }
    // Broken before the answer was complete: even a result in hand may not have committed.
    if (broken || PQstatus(conn_) != CONNECTION_OK || !last) {
        set_error("the connection was lost");
        if (last && !last.ok()) error_ += ": " + one_line(PQresultErrorMessage(last.get()));
        close();
        return {status::lost, {}, error_};
    }
    return {status::done, std::move(last), {}};
}

pg_reply pg_connection::exec_prepared(const char* name, const std::vector<const char*>& params, time_point deadline) {
    if (!alive()) return {pg_reply::status::not_sent, {}, error_};
    if (!PQsendQueryPrepared(conn_, name, static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0)) {
        set_error("could not send");
        close();
        return {pg_reply::status::not_sent, {}, error_};
    }
    return finish(deadline);
}

pg_reply pg_connection::exec(const std::string& sql, time_point deadline) {
    if (!alive()) return {pg_reply::status::not_sent, {}, error_};
    if (!PQsendQuery(conn_, sql.c_str())) {
        set_error("could not send");
        close();
        return {pg_reply::status::not_sent, {}, error_};
    }
    return finish(deadline);
}

pg_reply pg_connection::prepare(const char* name, const char* sql, time_point deadline) {
    if (!alive()) return {pg_reply::status::not_sent, {}, error_};
    if (!PQsendPrepare(conn_, name, sql, 0, nullptr)) {
        set_error("could not send");
        close();
        return {pg_reply::status::not_sent, {}, error_};
    }
    return finish(deadline);
}

void cancel_in_background(PGconn* conn) {
    // PQcancel blocks until the server has taken the request, which a stopped server never
    // does: each runs on a thread of its own, at most a few at once, never on a DB slot.
    static std::atomic<int> running{0};
    constexpr int kMaxRunning = 8;
    PGcancel* cancel = conn ? PQgetCancel(conn) : nullptr;
    if (!cancel) return;
    if (running.fetch_add(1) >= kMaxRunning) {
        running.fetch_sub(1);
        PQfreeCancel(cancel);
        return;
    }
    try {
        std::thread([cancel] {
            char error[256];
            PQcancel(cancel, error, sizeof error);  // best effort: the operation has already failed
            PQfreeCancel(cancel);
            running.fetch_sub(1);
        }).detach();
    } catch (const std::system_error&) {
        running.fetch_sub(1);
        PQfreeCancel(cancel);
    }
}

}  // namespace userapi::store
