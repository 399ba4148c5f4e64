// Users in bulk between real stores, in every direction (SQLite and the fixture's PostgreSQL):
// a snapshot carries ids, versions, every kind of name, emails and the next id; a loader fills
// only an empty store, shows nothing before its commit and leaves nothing when abandoned; a
// snapshot stays one state while a writer goes on; a backup is a consistent, openable file.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/store_factories.hpp"
#include "userapi/service/user_checksum.hpp"
#include "userapi/store/sqlite_backup.hpp"
#include "userapi/store/user_transfer.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;
using namespace userapi::store;

namespace {

// A store as --data names it, new and empty; "" when its engine is not here.
struct engine {
    std::string name;
    std::function<std::string()> make;
};

// This process's SQLite files, removed when it exits.
struct temp_folder {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("userapi-transfer-" + std::to_string(::getpid()));
    ~temp_folder() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

std::string temp_sqlite_path() {
    static temp_folder folder;
    static std::atomic<int> n{0};
    std::filesystem::create_directories(folder.dir);
    return (folder.dir / (std::to_string(n++) + ".db")).string();
}

void PrintTo(const engine& e, std::ostream* os) { *os << e.name; }

const engine kSqlite{"sqlite", temp_sqlite_path};
const engine kPostgres{"postgresql", userapi::testing::fresh_postgres_database};

// The repository the server would use on that store.
std::unique_ptr<user_repository> repository(const std::string& data) {
    if (!is_postgres_uri(data)) return std::make_unique<sqlite_user_repository>(data);
    auto repo = std::make_unique<postgres_user_repository>(data, 5s);
    repo->migrate();
    return repo;
}

std::vector<user> everything(user_snapshot& s, std::size_t page_size = 2) {
    std::vector<user> all, page;
    while (s.next(page, page_size)) all.insert(all.end(), page.begin(), page.end());
    return all;
}

// Copies `from` into `to` as migrate does; returns the next id copied.
std::int64_t copy(const std::string& from, const std::string& to, std::size_t page_size = 2) {
    auto snap = open_snapshot(from, 5s);
    auto load = open_loader(to, 5s);
    std::vector<user> page;
    while (snap->next(page, page_size)) EXPECT_FALSE(load->add(page));
    load->commit(snap->next_id());
    return snap->next_id();
}

const std::vector<std::string> kNames = {
    "Zoë \"Quote\" O'Brien", "emoji 😀 𝄞 astral", "e\u0301le\u0300ve combining", "שלום עולם", "مرحبا بالعالم",
    "back\\slash",           "日本語の名前"};

class Transfer : public ::testing::TestWithParam<std::pair<engine, engine>> {
protected:
    void SetUp() override {
        from = GetParam().first.make();
        to = GetParam().second.make();
        if ((from.empty() || to.empty()) && userapi::testing::engines_required())
            FAIL() << "PostgreSQL is missing under CI";
        if (from.empty() || to.empty()) GTEST_SKIP() << "PostgreSQL is not available here (tests/engines/engines.py)";
    }
    // Users with every kind of name, two patched (versions 2 and 3), the second and the last
    // deleted: the next id is above every remaining one.
    std::int64_t fill_source() {
        auto repo = repository(from);
        std::int64_t last = 0;
        for (std::size_t i = 0; i < kNames.size(); ++i)
            last = repo->create({kNames[i], "user" + std::to_string(i) + "@Example.org"}).stored.id;
        repo->update(1, {std::string("Renamed ✓"), std::nullopt}, {});
        repo->update(3, {std::nullopt, std::string("three@example.org")}, {});
        repo->update(3, {std::string("Three 三"), std::nullopt}, {});
        EXPECT_EQ(repo->remove(2, {}).status, write_status::done);
        EXPECT_EQ(repo->remove(last, {}).status, write_status::done);
        return last + 1;
    }
    std::string from, to;
};

}  // namespace

TEST_P(Transfer, CarriesIdsVersionsNamesEmailsAndTheNextId) {
    const auto next_id = fill_source();
    std::vector<user> before;
    {
        auto snap = open_snapshot(from, 5s);
        EXPECT_EQ(snap->next_id(), next_id);
        EXPECT_EQ(snap->count(), static_cast<std::int64_t>(kNames.size()) - 2);
        before = everything(*snap);
    }
    ASSERT_EQ(before.size(), kNames.size() - 2);
    EXPECT_EQ(before[0], (user{1, "Renamed ✓", "user0@Example.org", 2}));
    EXPECT_EQ(before[1], (user{3, "Three 三", "three@example.org", 3}));
    EXPECT_EQ(copy(from, to), next_id);

    auto snap = open_snapshot(to, 5s);
    EXPECT_EQ(snap->next_id(), next_id);
    EXPECT_EQ(everything(*snap, 1000), before);
    auto repo = repository(to);
    for (const auto& u : before) EXPECT_EQ(repo->find(u.id), u);
    EXPECT_FALSE(repo->find(2));
    EXPECT_FALSE(repo->find(next_id - 1)) << "a deleted last id stays deleted";
    const auto made = repo->create({"After", "after@example.org"});
    EXPECT_EQ(made.stored.id, next_id) << "the next id after the import is the source's";
    EXPECT_EQ(repo->create({"Ada", "USER0@example.org"}).status, write_status::email_taken)
        << "emails stay unique whatever their case";
}

// A store with a user, or one that ever assigned an id, is refused, and stays as it was.
TEST_P(Transfer, OnlyAnEmptyStoreIsLoaded) {
    fill_source();
    {
        auto repo = repository(to);
        repo->create({"Here", "here@example.org"});
    }
    EXPECT_THROW(open_loader(to, 5s), transfer_refused);
    EXPECT_EQ(repository(to)->size(), 1u);
    EXPECT_EQ(repository(to)->find(1)->name, "Here");

    const auto emptied = GetParam().second.make();
    {
        auto repo = repository(emptied);
        repo->remove(repo->create({"Gone", "gone@example.org"}).stored.id, {});
    }
    EXPECT_THROW(open_loader(emptied, 5s), transfer_refused) << "an id was assigned: it could be reused";
    EXPECT_EQ(repository(emptied)->create({"Next", "next@example.org"}).stored.id, 2);
}

// Until commit() nobody sees a user, and an abandoned load leaves the store empty, the next id
// included: a second load of the same store is accepted.
TEST_P(Transfer, NothingIsVisibleBeforeTheCommitAndNothingStaysWithout) {
    auto reader = repository(to);
    {
        auto load = open_loader(to, 5s);
        EXPECT_FALSE(load->add({{1, "A", "a@example.org", 1}, {5, "B", "b@example.org", 2}}));
        EXPECT_EQ(reader->size(), 0u);
        EXPECT_FALSE(reader->find(1));
    }  // abandoned
    {
        auto load = open_loader(to, 5s);
        EXPECT_FALSE(load->add({{1, "A", "a@example.org", 1}}));
        load->commit(10);
    }
    EXPECT_EQ(reader->find(1), (user{1, "A", "a@example.org", 1}));
    EXPECT_EQ(reader->size(), 1u);
    EXPECT_EQ(reader->create({"C", "c@example.org"}).stored.id, 10);
}

// An email repeated in any case, in the same batch or an earlier one, is named with the user
// that has it; the load is then given up and the store is as empty as before.
TEST_P(Transfer, RepeatedEmailsAreFoundAcrossAndWithinBatches) {
    {
        auto load = open_loader(to, 5s);
        EXPECT_FALSE(load->add({{1, "A", "a@example.org", 1}, {2, "B", "b@example.org", 1}}));
        const auto c = load->add({{3, "C", "c@example.org", 1}, {4, "D", "B@EXAMPLE.org", 1}});
        ASSERT_TRUE(c);
        EXPECT_EQ(c->index, 1u);
        EXPECT_EQ(c->other_id, 2);
    }
    {
        auto load = open_loader(to, 5s);
        const auto c = load->add({{1, "A", "a@example.org", 1},
                                  {2, "B", "x@example.org", 1},
                                  {3, "C", "X@example.org", 1},
                                  {4, "D", "a@EXAMPLE.org", 1}});
        ASSERT_TRUE(c);
        EXPECT_EQ(c->index, 2u) << "the first repeat in the batch";
        EXPECT_EQ(c->other_id, 2);
    }
    EXPECT_EQ(repository(to)->size(), 0u);
    auto load = open_loader(to, 5s);
    EXPECT_FALSE(load->add({{7, "A", "a@example.org", 1}}));
    load->commit(8);
}

// A writer goes on while the snapshot is read: the snapshot keeps the state it started with.
TEST_P(Transfer, ASnapshotIsOneStateWhileWritesGoOn) {
    const auto next_id = fill_source();
    auto snap = open_snapshot(from, 5s);
    const auto count = snap->count();
    std::vector<user> page;
    ASSERT_TRUE(snap->next(page, 1));
    {
        auto writer = repository(from);
        for (int i = 0; i < 20; ++i) writer->create({"Late", "late" + std::to_string(i) + "@example.org"});
        writer->update(3, {std::string("Changed later"), std::nullopt}, {});
        writer->remove(4, {});
    }
    auto rest = everything(*snap);
    rest.insert(rest.begin(), page.begin(), page.end());
    EXPECT_EQ(static_cast<std::int64_t>(rest.size()), count);
    EXPECT_EQ(snap->next_id(), next_id);
    for (const auto& u : rest) EXPECT_LT(u.id, next_id);
    EXPECT_EQ(rest[1], (user{3, "Three 三", "three@example.org", 3}));
    EXPECT_EQ(rest[2].id, 4);
}

INSTANTIATE_TEST_SUITE_P(EveryDirection, Transfer,
                         ::testing::Values(std::pair{kSqlite, kSqlite}, std::pair{kSqlite, kPostgres},
                                           std::pair{kPostgres, kSqlite}, std::pair{kPostgres, kPostgres}),
                         [](const auto& info) { return info.param.first.name + "_to_" + info.param.second.name; });

// What is not a userapi store is refused, and left as it was.
TEST(TransferSources, MissingOrForeignStoresAreRefusedUntouched) {
    EXPECT_THROW(open_snapshot(temp_sqlite_path(), 1s), transfer_refused);
    const auto foreign = temp_sqlite_path();
    {
        sqlite3* db = nullptr;
        sqlite3_open(foreign.c_str(), &db);
        sqlite3_exec(db, "CREATE TABLE notes (t TEXT)", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    }
    EXPECT_THROW(open_snapshot(foreign, 1s), transfer_refused);
    EXPECT_THROW(open_loader(foreign, 1s), transfer_refused) << "another program's database is no empty store";
    sqlite3* db = nullptr;
    sqlite3_open(foreign.c_str(), &db);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'users'", -1, &s, nullptr);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(s, 0), 0) << "the refused file was given a schema";
    sqlite3_finalize(s);
    sqlite3_close(db);
    EXPECT_THROW(open_loader(":memory:", 1s), transfer_refused);

    const auto pg = userapi::testing::fresh_postgres_database();
    if (pg.empty()) return;
    EXPECT_THROW(open_snapshot(pg, 5s), transfer_refused) << "a database without the schema";
}

// A backup while another connection writes: every step reads the same snapshot (the copy never
// starts over), and the copy is a state the store had: users 1..k with k the last id assigned.
TEST(SqliteBackup, CopiesOneSnapshotWhileAWriterGoesOn) {
    const auto from = temp_sqlite_path();
    repository(from)->seed(3000);
    std::atomic<bool> stop{false};
    std::atomic<int> written{0};
    std::thread writer([&] {
        auto repo = repository(from);
        for (int i = 0; i < 100000 && !stop; ++i) {
            repo->create({"W", "w" + std::to_string(i) + "@example.org"});
            ++written;
        }
    });
    while (written < 20) std::this_thread::yield();
    const int before = written;
    const auto to = temp_sqlite_path();
    std::int64_t last = -1;
    bool restarted = false;
    const auto r = backup_sqlite(
        from, to,
        [&](std::int64_t copied, std::int64_t) {
            restarted = restarted || copied < last;
            last = copied;
        },
        1, 1ms);
    const int during = written;
    stop = true;
    writer.join();
    EXPECT_GT(during, before) << "no commit happened while the pages were copied";
    EXPECT_FALSE(restarted) << "a commit made the copy start over";
    EXPECT_GT(r.pages, 1);
    auto snap = open_snapshot(to, 1s);
    const auto users = everything(*snap, 1000);
    ASSERT_EQ(static_cast<std::int64_t>(users.size()), r.users);
    ASSERT_GE(users.size(), 3020u);
    EXPECT_LE(users.size(), static_cast<std::size_t>(3000 + during));
    for (std::size_t i = 0; i < users.size(); ++i) ASSERT_EQ(users[i].id, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(snap->next_id(), static_cast<std::int64_t>(users.size()) + 1) << "the copy's next id is its own";
    EXPECT_FALSE(std::filesystem::exists(to + ".partial"));
}

TEST(SqliteBackup, NeverOverwritesAndRefusesWhatIsNotAStore) {
    const auto from = temp_sqlite_path();
    repository(from)->seed(2);
    const auto to = temp_sqlite_path();
    { std::ofstream(to) << "keep me"; }
    EXPECT_THROW(backup_sqlite(from, to, {}), transfer_refused);
    std::ifstream in(to);
    std::string kept;
    std::getline(in, kept);
    EXPECT_EQ(kept, "keep me");
    EXPECT_THROW(backup_sqlite(temp_sqlite_path(), temp_sqlite_path(), {}), transfer_refused);
}
