// One libpq connection whose every step has a deadline (contract 8.4): connecting, sending a
// statement, waiting for its result. libpq runs in its asynchronous mode (PQconnectPoll,
// PQsendQueryPrepared, PQconsumeInput, PQisBusy, PQgetResult) and the waits are poll() on its
// socket, so a server that stops answering (a stopped process, a dead peer, a black-holed
// network) costs at most the deadline. When a deadline passes after a statement was sent, the
// statement is cancelled (PQcancel, on a short-lived thread of its own: it blocks until the
// server takes the request) and the connection is closed; the next use connects afresh.
//
// Every connection also gets TCP keepalives, a TCP user timeout and connect_timeout (the
// URI's own values win), and its notices — also the FATAL a server sends when it terminates
// an idle connection — go through the server's logger, never raw to stderr.
//
// What came of a statement says whether it may have run: not_sent (the connection was found
// dead before it left: surely not run), lost (the connection broke after it was sent), or
// timed_out (no answer by the deadline; cancelled). See pg_reply.
//
// Not thread-safe: one thread at a time (a DB-queue slot, or the watch's thread).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

struct pg_conn;
struct pg_result;

namespace userapi::store {

// A result, cleared when it goes.
class pg_result_ptr {
public:
    pg_result_ptr() = default;
    explicit pg_result_ptr(pg_result* r) : r_(r) {}
    pg_result_ptr(pg_result_ptr&& o) noexcept : r_(o.release()) {}
    pg_result_ptr& operator=(pg_result_ptr&& o) noexcept;
    ~pg_result_ptr();
    pg_result* get() const { return r_; }
    pg_result* release() {
        auto* r = r_;
        r_ = nullptr;
        return r;
    }
    explicit operator bool() const { return r_ != nullptr; }
    bool ok() const;  // PGRES_COMMAND_OK or PGRES_TUPLES_OK
    int rows() const;
    const char* value(int row, int col) const;
    std::string sqlstate() const;  // "" when none

private:
    pg_result* r_ = nullptr;
};

struct pg_reply {
    enum class status {
        done,      // the server answered: `result` is its answer (which may be an SQL error)
        not_sent,  // the connection was dead before the statement left: it surely did not run
        lost,      // the connection broke after the statement was sent: it may have run
        timed_out  // no answer by the deadline: cancelled and the connection closed; it may have run
    };
    status st = status::not_sent;
    pg_result_ptr result;
    std::string error;  // why, when not done
    bool done() const { return st == status::done; }
    bool maybe_performed() const { return st == status::lost || st == status::timed_out; }
};

class pg_connection {
public:
    using time_point = std::chrono::steady_clock::time_point;

    // `operation_timeout` sets the TCP user timeout and connect_timeout libpq is given.
    pg_connection(std::string conninfo, std::chrono::milliseconds operation_timeout);
    ~pg_connection();
    pg_connection(const pg_connection&) = delete;
    pg_connection& operator=(const pg_connection&) = delete;

    // Connects (closing any connection first) by `deadline`; false with error() saying why.
    bool connect(time_point deadline);
    // Starts connecting without waiting: the caller drives PQconnectPoll on get() (the watch
    // does, on Asio). False when libpq refused at once (error() says why).
    bool start_connect();
    bool connected() const;
    void close();
    // False (and closed) when the server has closed the connection while it sat idle: input
    // already there is read without waiting (a FATAL notice, an end of file). A statement is
    // only sent on a connection that passed this.
    bool alive();

    pg_reply exec_prepared(const char* name, const std::vector<const char*>& params, time_point deadline);
    // Text SQL, possibly several statements: the last result, or the first error (as PQexec).
    pg_reply exec(const std::string& sql, time_point deadline);
    pg_reply prepare(const char* name, const char* sql, time_point deadline);
    // Waits for the result of what was sent by hand on get() (PQsendQuery...).
    pg_reply finish(time_point deadline);

    pg_conn* get() const { return conn_; }
    int backend_pid() const;
    // libpq's last error on this connection, trimmed; or what connect() said.
    const std::string& error() const { return error_; }
    const std::string& conninfo() const { return conninfo_; }

private:
    struct notices;
    void set_error(const std::string& what);
    pg_reply timed_out();

    std::string conninfo_;
    std::chrono::milliseconds operation_timeout_;
    pg_conn* conn_ = nullptr;
    std::unique_ptr<notices> notices_;  // what the notice receiver saw; outlives conn_
    std::string error_;
};

// libpq's multi-line messages ("server closed the connection unexpectedly\n\tThis probably
// means...") as one line, for a log field or an error.
std::string one_line(const char* text);

// Sends a cancel request for what `conn` is running, without waiting for it (see above).
void cancel_in_background(pg_conn* conn);

}  // namespace userapi::store
