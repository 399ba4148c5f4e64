// What only the PostgreSQL store does: the schema and the seeding under a lock when several
// instances start at once, the notifications every write sends and the watch that hears them,
// reconnecting after the server drops a connection, and no password in any message.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "support/store_factories.hpp"
#include "support/wait.hpp"
#include "userapi/store/conninfo.hpp"
#include "userapi/store/postgres_watch.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;
using namespace userapi::store;
using userapi::testing::fresh_postgres_database;

namespace {

class Postgres : public ::testing::Test {
protected:
    void SetUp() override {
        uri = fresh_postgres_database();
        if (uri.empty() && userapi::testing::engines_required()) FAIL() << "PostgreSQL is missing under CI";
        if (uri.empty()) GTEST_SKIP() << "PostgreSQL is not available here (tests/engines/engines.py)";
    }
    // Runs `sql` as the superuser in this test's database.
    void admin(const std::string& sql) {
        const auto at = uri.find('@');
        PGconn* c = PQconnectdb(("postgresql://postgres" + uri.substr(at)).c_str());
        PGresult* r = PQexec(c, sql.c_str());
        EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) << PQerrorMessage(c);
        PQclear(r);
        PQfinish(c);
    }
    std::string uri;
};

}  // namespace

// Four instances start together against an empty database: every one migrates and seeds
// without error, and the users are seeded once, 1..N.
TEST_F(Postgres, InstancesStartingTogetherSeedOnce) {
    std::vector<std::thread> starts;
    std::atomic<int> failures{0};
    for (int i = 0; i < 4; ++i)
        starts.emplace_back([&] {
            try {
                postgres_user_repository repo(uri, 5s);
                repo.migrate();
                seed_users(repo, 5);
            } catch (const std::exception& e) {
                ++failures;
                ADD_FAILURE() << e.what();
            }
        });
    for (auto& t : starts) t.join();
    EXPECT_EQ(failures, 0);
    postgres_user_repository repo(uri, 5s);
    EXPECT_EQ(repo.size(), 5u);
    EXPECT_EQ(repo.find(1)->email, "user1@example.com");
    EXPECT_EQ(repo.find(5)->email, "user5@example.com");
    EXPECT_FALSE(repo.find(6));
}

// A schema newer than this build is refused, naming its version.
TEST_F(Postgres, NewerSchemaIsRefused) {
    {
        postgres_user_repository repo(uri, 5s);
        repo.migrate();
    }
    admin("UPDATE userapi_schema SET version = 99");
    postgres_user_repository repo(uri, 5s);
    try {
        repo.migrate();
        FAIL() << "migrated a schema from the future";
    } catch (const storage_error& e) {
        EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
    }
}

// A database that does not answer within the connect timeout is an error, with no password.
TEST_F(Postgres, UnreachableAtStartIsAnErrorWithoutThePassword) {
    const auto start = std::chrono::steady_clock::now();
    try {
        postgres_user_repository repo("postgresql://userapi:hunter2@127.0.0.1:1/userapi", 600ms);
        FAIL() << "connected to nothing";
    } catch (const storage_error& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
        EXPECT_NE(what.find("postgresql://userapi@127.0.0.1:1/userapi?password=***"), std::string::npos) << what;
    }
    EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms) << "gave up before the connect timeout";
}

// Contract 8.2 across instances: while another transaction (another instance's write) holds
// an Idempotency-Key, a request with that key is in progress (409), decided at once and
// writing nothing; once the holder is gone, the key is free.
TEST_F(Postgres, KeyHeldByAnotherTransactionIsInProgress) {
    postgres_user_repository repo(uri, 5s);
    repo.migrate();
    const auto at = uri.find('@');
    PGconn* other = PQconnectdb(("postgresql://postgres" + uri.substr(at)).c_str());
    ASSERT_EQ(PQstatus(other), CONNECTION_OK);
    PQclear(PQexec(other, "BEGIN"));
    PGresult* held = PQexec(other, "SELECT pg_advisory_xact_lock(hashtextextended('' || chr(31) || 'busy-key', 8))");
    ASSERT_EQ(PQresultStatus(held), PGRES_TUPLES_OK) << PQerrorMessage(other);
    PQclear(held);
    const idempotency_key k{"", "busy-key", "fp", std::chrono::seconds(60)};
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(repo.create_once({"Busy", "busy@example.org"}, k).key, key_outcome::in_progress);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "waited for the other transaction";
    EXPECT_EQ(repo.size(), 0u);
    PQclear(PQexec(other, "ROLLBACK"));
    PQfinish(other);
    EXPECT_EQ(repo.create_once({"Busy", "busy@example.org"}, k).key, key_outcome::fresh);
    EXPECT_EQ(repo.size(), 1u);
}

// Contract 8.6 (finding 7): whatever libpq would read as a password is hidden, however it is
// written, because libpq's own parser reads it.
TEST(PostgresRedaction, PasswordsNeverShow) {
    const auto r = [](const std::string& c) { return postgres_user_repository::redacted(c); };
    EXPECT_EQ(r("postgresql://u:secret@h:5432/db"), "postgresql://u@h:5432/db?password=***");
    EXPECT_EQ(r("postgres://u@h/db?password=secret&sslmode=off"), "postgres://u@h/db?password=***&sslmode=off");
    EXPECT_EQ(r("postgresql://u@h/db?pass%77ord=secret"), "postgresql://u@h/db?password=***");
    EXPECT_EQ(r("postgresql://u@h/db?%70assword=secret"), "postgresql://u@h/db?password=***");
    EXPECT_EQ(r("postgresql://u@h/db?password=%73ecret"), "postgresql://u@h/db?password=***");
    EXPECT_EQ(r("postgresql://u@h/db?sslpass%77ord=secret&sslmode=require"),
              "postgresql://u@h/db?sslmode=require&sslpassword=***");
    EXPECT_EQ(r("postgresql://u:s%65cret@h/db"), "postgresql://u@h/db?password=***");
    EXPECT_EQ(r("host=h password=secret dbname=d"), "password=*** dbname=d host=h");
    EXPECT_EQ(r("host=h password = 'se cret' dbname=d"), "password=*** dbname=d host=h");
    EXPECT_EQ(r("postgresql://u@h/db"), "postgresql://u@h/db");
    EXPECT_EQ(r("postgresql:///db?host=/run/postgresql"), "postgresql:///db?host=%2Frun%2Fpostgresql");
    for (const char* bad : {"postgresql://u:secret@[::1/db", "postgresql://u@h/db?password=secret&bogus%41=1"}) {
        EXPECT_EQ(r(bad).find("secret"), std::string::npos) << r(bad);
    }
}

// libpq's own messages about a string it cannot parse quote it: they are not shown; secrets
// libpq did read are masked wherever a message repeats them.
TEST(PostgresRedaction, LibpqMessagesNeverShowThePassword) {
    for (const char* bad : {"postgresql://u:secret@[::1/db", "postgresql://u:se%zzcret@h/db"}) {
        PGconn* c = PQconnectdb(bad);
        const std::string raw = PQerrorMessage(c);
        PQfinish(c);
        const auto shown = redact_libpq_message(raw, bad);
        EXPECT_EQ(shown.find("secret"), std::string::npos) << shown;
        EXPECT_EQ(shown.find("se%zzcret"), std::string::npos) << shown;
    }
    EXPECT_EQ(redact_libpq_message("password hunter2 rejected", "postgresql://u:hunter2@h/db"),
              "password *** rejected");
}

// The server drops the connection: the next read is sent on a fresh connection and succeeds
// (contract 8.4: a store that is up never causes a failed read), and so do the reads after it.
TEST_F(Postgres, ReconnectsAfterTheServerDropsTheConnection) {
    postgres_user_repository repo(uri, 5s);
    repo.migrate();
    seed_users(repo, 2);
    admin(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = 'userapi' AND pid <> "
        "pg_backend_pid()");
    EXPECT_EQ(repo.find(1)->email, "user1@example.com");
    EXPECT_EQ(repo.find(2)->email, "user2@example.com");
}

// Writes of another instance reach the watch once committed (its own are not news); a
// DELETE /cache elsewhere arrives as "clear everything".
TEST_F(Postgres, WatchHearsOtherInstancesWrites) {
    std::mutex mu;
    std::vector<std::string> changed;  // "id version kind"
    int cleared = 0;
    bool listening = false;
    postgres_watch watch(uri, {[&](const notification& n) {
                                   std::lock_guard lock(mu);
                                   changed.push_back(std::to_string(n.id) + " " + std::to_string(n.version) +
                                                     (n.kind == notification::deleted ? " d" : " u"));
                               },
                               [&] {
                                   std::lock_guard lock(mu);
                                   ++cleared;
                               },
                               [&](bool on) {
                                   std::lock_guard lock(mu);
                                   listening = on;
                               }});
    postgres_user_repository mine(uri, 5s, [&](int o, int n) { watch.own_pid(o, n); });
    mine.migrate();
    postgres_user_repository theirs(uri, 5s);
    watch.start();
    auto locked = [&](auto f) {
        std::lock_guard lock(mu);
        return f();
    };
    ASSERT_TRUE(userapi::testing::eventually([&] { return locked([&] { return listening; }); }));
    EXPECT_TRUE(watch.healthy());
    const auto own = mine.create({"Mine", "mine@example.org"}).stored.id;
    const auto other = theirs.create({"Theirs", "theirs@example.org"}).stored.id;
    ASSERT_TRUE(userapi::testing::eventually([&] { return locked([&] { return !changed.empty(); }); }, 2s));
    theirs.update(other, {std::string("Theirs 2")}, {});
    theirs.remove(other, {});
    theirs.announce_clear();
    ASSERT_TRUE(userapi::testing::eventually([&] { return locked([&] { return cleared == 1; }); }, 2s));
    const auto o = std::to_string(other);
    locked([&] {
        EXPECT_EQ(changed, (std::vector<std::string>{o + " 1 u", o + " 2 u", o + " 2 d"}))
            << "each with its version and kind; own write " << own << " must not come back";
        return 0;
    });
    const auto s = watch.snapshot();
    EXPECT_EQ(s.notifications, 4u);
    EXPECT_EQ(s.lag_count, 4u);
    watch.stop();
}

// The watch loses the channel when the server drops it, says so, and listens again by itself.
TEST_F(Postgres, WatchReconnects) {
    std::atomic<int> ups{0}, downs{0};
    postgres_watch watch(uri, {{}, {}, [&](bool on) { ++(on ? ups : downs); }});
    watch.start();
    ASSERT_TRUE(userapi::testing::eventually([&] { return ups.load() == 1; }));
    admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND "
        "(query LIKE 'LISTEN%' OR query = 'SELECT 1')");
    ASSERT_TRUE(userapi::testing::eventually([&] { return downs.load() == 1; }, 5s));
    ASSERT_TRUE(userapi::testing::eventually([&] { return ups.load() == 2; }, 5s));
    EXPECT_EQ(watch.snapshot().reconnects, 1u);
    watch.stop();
}
