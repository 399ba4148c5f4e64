#include "userapi/store/sqlite_user_repository.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace userapi::service;
using namespace userapi::store;
namespace fs = std::filesystem;

namespace {

class SqliteRepository : public ::testing::Test {
protected:
    SqliteRepository() {
        dir = fs::path(::testing::TempDir()) / ("userapi-sqlite-" + std::to_string(::getpid()) + "-" +
                                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
        path = (dir / "data" / "users.db").string();
    }
    ~SqliteRepository() override { fs::remove_all(dir); }

    static std::string read_all(const std::string& p) {
        std::ifstream in(p, std::ios::binary);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
    static void run_sql(const std::string& p, const char* sql) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
        sqlite3_close(db);
    }

    fs::path dir;
    std::string path;
};

}  // namespace

// The file and its folder are created; a stored user reads back; a missing one is nullopt.
TEST_F(SqliteRepository, CreateThenFind) {
    sqlite_user_repository repo(path);
    EXPECT_TRUE(fs::exists(path));
    auto c = repo.create({"Ada", "ada@example.org"});
    ASSERT_EQ(c.status, write_status::done);
    EXPECT_EQ(c.stored.id, 1);
    EXPECT_EQ(repo.find(1), (user{1, "Ada", "ada@example.org", 1}));
    EXPECT_FALSE(repo.find(2));
    EXPECT_EQ(repo.size(), 1u);
}

// Users and the id sequence survive reopening; ids are never reused, even after a delete.
TEST_F(SqliteRepository, SurvivesReopenAndNeverReusesIds) {
    {
        sqlite_user_repository repo(path);
        repo.create({"A", "a@example.org"});
        repo.create({"B", "b@example.org"});
    }
    run_sql(path, "DELETE FROM users WHERE id = 2");
    sqlite_user_repository repo(path);
    EXPECT_EQ(repo.find(1)->email, "a@example.org");
    EXPECT_EQ(repo.create({"C", "c@example.org"}).stored.id, 3);
}

// Seeding fills an empty store once; a restart does not duplicate or change users.
TEST_F(SqliteRepository, SeedOnlyAnEmptyStore) {
    {
        sqlite_user_repository repo(path);
        seed_users(repo, 3);
        repo.create({"Ada", "ada@example.org"});
    }
    sqlite_user_repository repo(path);
    seed_users(repo, 5);
    EXPECT_EQ(repo.size(), 4u);
    EXPECT_EQ(repo.find(3)->email, "user3@example.com");
    EXPECT_EQ(repo.find(4)->name, "Ada");
}

// The schema carries its version; a newer one is refused and the file left as it was.
TEST_F(SqliteRepository, NewerSchemaRefusedFileUntouched) {
    { sqlite_user_repository repo(path); }
    run_sql(path, "PRAGMA user_version = 99");
    run_sql(path, "PRAGMA journal_mode = DELETE");  // fold the WAL in, so the main file is whole
    const auto before = read_all(path);
    try {
        sqlite_user_repository repo(path);
        FAIL() << "opened a schema from the future";
    } catch (const storage_error& e) {
        EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_all(path), before);
}

// A file that is not SQLite is refused and left as it was.
TEST_F(SqliteRepository, NotSqliteRefusedFileUntouched) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << "these are not the users you are looking for\n";
    const auto before = read_all(path);
    EXPECT_THROW(sqlite_user_repository{path}, storage_error);
    EXPECT_EQ(read_all(path), before);
}

// A path that cannot be created is refused with a clear error.
TEST_F(SqliteRepository, UnwritablePathRefused) {
    fs::create_directories(dir);
    std::ofstream(dir / "file") << "x";
    EXPECT_THROW(sqlite_user_repository{(dir / "file" / "users.db").string()}, storage_error);
}

// A full disk (simulated by a page limit) fails the write with storage_error and stores nothing.
TEST_F(SqliteRepository, FullDiskFailsWriteCleanly) {
    sqlite_user_repository repo(path);
    repo.create({"A", "a@example.org"});
    ASSERT_EQ(sqlite3_exec(repo.native_handle(), "PRAGMA max_page_count = 1", nullptr, nullptr, nullptr), SQLITE_OK);
    bool threw = false;
    for (int i = 0; i < 200 && !threw; ++i) {
        try {
            repo.create({std::string(2000, 'x'), "u" + std::to_string(i) + "@example.org"});
        } catch (const storage_error&) {
            threw = true;
        }
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(repo.find(1)->email, "a@example.org") << "earlier rows intact";
}

// ":memory:" works and keeps nothing.
TEST_F(SqliteRepository, InMemory) {
    {
        sqlite_user_repository repo(":memory:");
        repo.create({"A", "a@example.org"});
        EXPECT_EQ(repo.size(), 1u);
    }
    sqlite_user_repository repo(":memory:");
    EXPECT_EQ(repo.size(), 0u);
}

// A store made by the release with schema version 1 (tests/fixtures/userapi-v1.db) migrates
// to the current version on open (2: users.version, 3: idempotency_keys): every user keeps its
// fields and gets version 1, the id sequence goes on, and versions and Idempotency-Keys then
// work as for a new store.
TEST_F(SqliteRepository, MigratesAVersion1FileMadeByTheLastRelease) {
    fs::create_directories(fs::path(path).parent_path());
    fs::copy_file(fs::path(USERAPI_SOURCE_DIR) / "tests/fixtures/userapi-v1.db", path);
    {
        sqlite_user_repository repo(path);
        EXPECT_EQ(repo.size(), 4u);
        EXPECT_EQ(repo.find(1), (user{1, "User 1", "user1@example.com", 1}));
        EXPECT_EQ(repo.find(4), (user{4, "Ada Lovelace", "ada@example.org", 1}));
        auto p = repo.update(4, {std::string("Ada King")}, {});
        ASSERT_EQ(p.status, write_status::done);
        EXPECT_EQ(p.stored.version, 2);
        EXPECT_EQ(repo.create({"Next", "next@example.org"}).stored.id, 5);
        const idempotency_key k{"", "after-migration", "fp", std::chrono::seconds(60)};
        EXPECT_EQ(repo.create_once({"Keyed", "keyed@example.org"}, k).stored.id, 6);
        EXPECT_EQ(repo.create_once({"Keyed", "keyed@example.org"}, k).key, key_outcome::replayed);
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(s, 0), sqlite_user_repository::kSchemaVersion);
    sqlite3_finalize(s);
    sqlite3_close(db);
    sqlite_user_repository again(path);  // a migrated file opens as it is
    EXPECT_EQ(again.find(4)->version, 2);
}
