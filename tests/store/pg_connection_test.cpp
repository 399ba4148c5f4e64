// A PostgreSQL store that hangs or goes away (contract 8.4), against the fixture's real
// server: every statement has a deadline and is cancelled when it passes, a connection the
// server closed is never used (a write goes out on a fresh one, surely once), a read whose
// connection broke is sent again, and what libpq reports goes through the logger.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>

#include <cstdio>
#include <sstream>

#include "support/store_factories.hpp"
#include "support/wait.hpp"
#include "userapi/log/log.hpp"
#include "userapi/store/pg_connection.hpp"
#include "userapi/store/postgres_watch.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;
using namespace userapi::store;
using userapi::testing::eventually;
using userapi::testing::fresh_postgres_database;
using clk = std::chrono::steady_clock;

namespace {

class PgFaults : public ::testing::Test {
protected:
    void SetUp() override {
        uri = fresh_postgres_database();
        if (uri.empty() && userapi::testing::engines_required()) FAIL() << "PostgreSQL is missing under CI";
        if (uri.empty()) GTEST_SKIP() << "PostgreSQL is not available here (tests/engines/engines.py)";
        admin_conn = PQconnectdb(admin_uri().c_str());
    }
    std::string admin_uri() const { return "postgresql://postgres" + uri.substr(uri.find('@')); }
    void TearDown() override {
        if (admin_conn) PQfinish(admin_conn);
    }
    // Runs `sql` as the superuser in this test's database: the first value, or "".
    std::string admin(const std::string& sql) {
        PGresult* r = PQexec(admin_conn, sql.c_str());
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        EXPECT_TRUE(ok) << PQerrorMessage(admin_conn);
        std::string v = ok && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        PQclear(r);
        return v;
    }
    int backends(const std::string& where) {
        return std::stoi(
            admin("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND " + where));
    }
    void terminate(int pid) { admin("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)"); }

    std::string uri;
    PGconn* admin_conn = nullptr;
};

// The server's logger, captured while a test runs.
struct captured_log {
    std::ostringstream out;
    explicit captured_log(const char* format = "json") {
        userapi::log::setup_logging("info", format, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    }
    ~captured_log() { userapi::log::setup_logging("warn", "text"); }
    std::string text() {
        spdlog::default_logger_raw()->flush();
        return out.str();
    }
};

double seconds_since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

}  // namespace

// A statement that outlives its deadline: answered timed_out at the deadline, the connection
// closed, and the statement cancelled on the server (not left running there).
TEST_F(PgFaults, StatementPastItsDeadlineIsCancelled) {
    pg_connection c(uri, 300ms);
    ASSERT_TRUE(c.connect(clk::now() + 5s)) << c.error();
    const auto start = clk::now();
    const auto r = c.exec("SELECT pg_sleep(30) /* deadline test */", start + 300ms);
    EXPECT_EQ(r.st, pg_reply::status::timed_out) << r.error;
    EXPECT_TRUE(r.maybe_performed());
    EXPECT_GE(seconds_since(start), 0.29);
    EXPECT_LT(seconds_since(start), 2.0);
    EXPECT_FALSE(c.connected());
    EXPECT_TRUE(
        eventually([&] { return backends("query LIKE '%deadline test%' AND pid <> pg_backend_pid()") == 0; }, 5s))
        << "the statement still runs on the server: never cancelled";
    ASSERT_TRUE(c.connect(clk::now() + 5s)) << "a fresh connection: " << c.error();
    EXPECT_TRUE(c.exec("SELECT 1", clk::now() + 5s).done());
}

// A server that accepts the connection and never says a word (a stopped process, a black hole
// behind a proxy): connecting costs the deadline, not forever.
TEST_F(PgFaults, ServerThatNeverAnswersCostsTheDeadline) {
    const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(silent, 8), 0);  // the kernel completes the handshake; nobody reads
    socklen_t len = sizeof a;
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
    const auto silent_uri = "postgresql://userapi@127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/userapi";
    pg_connection c(silent_uri, 5s);
    const auto start = clk::now();
    EXPECT_FALSE(c.connect(start + 400ms));
    EXPECT_GE(seconds_since(start), 0.39);
    EXPECT_LT(seconds_since(start), 2.0);
    EXPECT_NE(c.error().find("no answer"), std::string::npos) << c.error();
    // The repository too: its start-up gives up at the connect timeout.
    const auto again = clk::now();
    EXPECT_THROW(postgres_user_repository(silent_uri, 600ms, {}, 200ms), storage_error);
    EXPECT_LT(seconds_since(again), 2.5);
    ::close(silent);
}

// Reads and writes after the server terminated the repository's connection while it sat idle
// (pg_terminate_backend, a restart): both succeed on a fresh connection, the write exactly once.
TEST_F(PgFaults, ConnectionTheServerClosedIsNeverUsed) {
    std::atomic<int> pid{0};
    postgres_user_repository repo(uri, 5s, [&](int, int now) { pid = now; });
    repo.migrate();
    seed_users(repo, 3);
    ASSERT_NE(pid.load(), 0);
    terminate(pid);
    const auto found = repo.find(1);
    ASSERT_TRUE(found.has_value()) << "a read failed although the database is up";
    EXPECT_EQ(found->email, "user1@example.com");

    const int before = pid;
    terminate(pid);
    const auto w = repo.update(2, {std::string("Renamed")}, {});
    EXPECT_EQ(w.status, write_status::done);
    EXPECT_EQ(w.stored.version, 2) << "sent once: one version more";
    EXPECT_NE(pid.load(), before) << "on a fresh connection";
    EXPECT_EQ(admin("SELECT version FROM users WHERE id = 2"), "2");
}

// A write whose answer does not come by the deadline (here: it waits for a row lock) is
// reported as maybe performed, and it is cancelled: released afterwards, the row is unchanged.
TEST_F(PgFaults, WriteThatTimesOutIsCancelledAndSaysItMayHaveRun) {
    {
        postgres_user_repository setup(uri, 5s);
        setup.migrate();
        seed_users(setup, 2);
    }
    postgres_user_repository repo(uri, 5s, {}, 400ms);
    ASSERT_TRUE(repo.find(1).has_value());
    pg_connection locker(admin_uri(), 5s);  // not admin_conn: its views of pg_stat_activity stay fixed in a transaction
    ASSERT_TRUE(locker.connect(clk::now() + 5s)) << locker.error();
    ASSERT_TRUE(locker.exec("BEGIN; SELECT id FROM users WHERE id = 1 FOR UPDATE", clk::now() + 5s).result.ok());
    const auto start = clk::now();
    try {
        repo.update(1, {std::string("Blocked")}, {});
        ADD_FAILURE() << "the update returned although the row was locked";
    } catch (const storage_error& e) {
        EXPECT_TRUE(e.maybe_performed()) << e.what();
    }
    EXPECT_GE(seconds_since(start), 0.39);
    EXPECT_LT(seconds_since(start), 2.0);
    EXPECT_TRUE(eventually([&] { return backends("wait_event_type = 'Lock'") == 0; }, 5s))
        << "the update still waits on the server: never cancelled";
    ASSERT_TRUE(locker.exec("ROLLBACK", clk::now() + 5s).result.ok());
    EXPECT_EQ(admin("SELECT name || ' ' || version FROM users WHERE id = 1"), "User 1 1");
    // The slot's repository is whole again.
    EXPECT_EQ(repo.update(1, {std::string("Unblocked")}, {}).stored.version, 2);
}

// What libpq reports goes through the server's logger in its format: a notice the server
// sends, and the FATAL of a connection it terminates while idle.
TEST_F(PgFaults, NoticesGoThroughTheLogger) {
    captured_log log("json");
    pg_connection c(uri, 5s);
    ASSERT_TRUE(c.connect(clk::now() + 5s)) << c.error();
    EXPECT_TRUE(c.exec("DO $$ BEGIN RAISE WARNING 'careful: %', 42; END $$", clk::now() + 5s).done());
    terminate(c.backend_pid());
    EXPECT_FALSE(c.alive()) << "a terminated connection looked alive";
    const auto text = log.text();
    EXPECT_NE(text.find(R"("severity":"WARNING","sqlstate":"01000","message":"careful: 42")"), std::string::npos)
        << text;
    EXPECT_NE(text.find(R"("severity":"FATAL","sqlstate":"57P01","message":"terminating connection due to )"),
              std::string::npos)
        << text;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        EXPECT_EQ(line.rfind(R"({"time":")", 0), 0u) << "not the logger's JSON: " << line;
}

// The notification connection's loss is noticed from its socket at once, not by the next
// heartbeat: measured from the call that signals the backend.
TEST_F(PgFaults, WatchNoticesATerminatedBackendAtOnce) {
    std::atomic<int> ups{0};
    std::atomic<std::int64_t> down_at{0};
    postgres_watch watch(uri, {{}, {}, [&](bool on) {
                                   if (on)
                                       ++ups;
                                   else
                                       down_at = clk::now().time_since_epoch().count();
                               }});
    watch.start();
    ASSERT_TRUE(eventually([&] { return ups.load() == 1; }));
    const auto pid = admin(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
        "pg_backend_pid() AND backend_type = 'client backend'");
    ASSERT_FALSE(pid.empty());
    const auto exited = clk::now();
    admin("SELECT pg_terminate_backend(" + pid + ")");
    ASSERT_TRUE(eventually([&] { return down_at.load() != 0; }, 5s));
    const auto noticed = clk::time_point(clk::duration(down_at.load()));
    const double ms = std::chrono::duration<double, std::milli>(noticed - exited).count();
    std::printf("watch noticed a terminated backend %.2f ms after pg_terminate_backend was called\n", ms);
    EXPECT_LT(ms, 400.0) << "noticed by a heartbeat (every 500 ms), not by its socket";
    EXPECT_FALSE(watch.healthy());
    ASSERT_TRUE(eventually([&] { return ups.load() == 2; }, 5s));
    EXPECT_TRUE(watch.healthy());
    watch.stop();
}
