// Users into an empty SQLite store: one write transaction (BEGIN IMMEDIATE) from the emptiness
// check to the commit, with one prepared INSERT per user. Until COMMIT nothing reaches the
// database file but uncommitted WAL frames, which SQLite ignores when it next opens the file:
// killed midway, the store is as empty as before. A server on the same file waits for the lock
// meanwhile (its writes answer 503 after its busy timeout); it had no user to serve anyway.
#include "sqlite_connection.hpp"
#include "transfer_drivers.hpp"
#include "userapi/service/user_repository.hpp"
#include "userapi/store/sqlite_user_repository.hpp"

namespace userapi::store {
namespace {

class sqlite_user_loader final : public user_loader {
public:
    explicit sqlite_user_loader(const std::string& path) : conn_(path, SQLITE_OPEN_READWRITE) {
        conn_.exec("PRAGMA synchronous = FULL");   // the commit is on disk when it returns
        conn_.exec("PRAGMA cache_size = -16384");  // 16 MiB: the indexes' pages stay in memory
        conn_.exec("BEGIN IMMEDIATE");
        try {
            const auto users = conn_.query_int("SELECT count(*) FROM users").value_or(0);
            if (users > 0)
                throw transfer_refused(path + " holds " + std::to_string(users) +
                                       " users: import needs an empty store");
            const auto assigned = conn_.query_int("SELECT seq FROM sqlite_sequence WHERE name = 'users'").value_or(0);
            if (assigned > 0)
                throw transfer_refused(path + " has assigned ids up to " + std::to_string(assigned) +
                                       " (its users were deleted): import needs a store that never assigned an id");
            insert_ = conn_.prepare("INSERT INTO users (id, name, email, version) VALUES (?, ?, ?, ?)");
            holder_ = conn_.prepare("SELECT id FROM users WHERE email = ? COLLATE NOCASE");
        } catch (...) {
            sqlite3_exec(conn_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }
    ~sqlite_user_loader() override {
        insert_.reset();
        holder_.reset();
        if (!committed_) sqlite3_exec(conn_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }

    std::size_t batch_size() const override { return 1000; }

    std::optional<email_conflict> add(const std::vector<service::user>& batch) override {
        if (failed_) throw std::logic_error("add() after a conflict");
        sqlite3_stmt* s = insert_.get();
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const auto& u = batch[i];
            sqlite3_bind_int64(s, 1, u.id);
            sqlite3_bind_text(s, 2, u.name.data(), static_cast<int>(u.name.size()), SQLITE_STATIC);
            sqlite3_bind_text(s, 3, u.email.data(), static_cast<int>(u.email.size()), SQLITE_STATIC);
            sqlite3_bind_int64(s, 4, u.version);
            const int rc = sqlite3_step(s);
            sqlite3_reset(s);
            if (rc == SQLITE_DONE) continue;
            if (rc == SQLITE_CONSTRAINT_UNIQUE) {
                failed_ = true;
                return email_conflict{i, holder_of(u.email)};
            }
            conn_.fail("write failed (user " + std::to_string(u.id) + ")");
        }
        return std::nullopt;
    }

    void commit(std::int64_t next_id) override {
        if (failed_) throw std::logic_error("commit() after a conflict");
        // AUTOINCREMENT's counter: the largest id assigned, so the next one is next_id.
        auto set = conn_.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'users'");
        sqlite3_bind_int64(set.get(), 1, next_id - 1);
        if (sqlite3_step(set.get()) != SQLITE_DONE) conn_.fail("cannot set the next id");
        if (sqlite3_changes(conn_.get()) == 0) {
            auto add = conn_.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', ?)");
            sqlite3_bind_int64(add.get(), 1, next_id - 1);
            if (sqlite3_step(add.get()) != SQLITE_DONE) conn_.fail("cannot set the next id");
        }
        conn_.exec("COMMIT");
        committed_ = true;
    }

private:
    std::int64_t holder_of(const std::string& email) {
        sqlite3_stmt* s = holder_.get();
        sqlite3_bind_text(s, 1, email.data(), static_cast<int>(email.size()), SQLITE_STATIC);
        const std::int64_t id = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        return id;
    }

    sqlite_connection conn_;
    sqlite_statement insert_;
    sqlite_statement holder_;
    bool failed_ = false;
    bool committed_ = false;
};

}  // namespace

std::unique_ptr<user_loader> open_sqlite_loader(const std::string& path) {
    if (path == ":memory:") throw transfer_refused(":memory: keeps nothing after the import ends");
    require_new_or_sqlite_store(path);
    { sqlite_user_repository schema(path); }  // creates the file, its folder and the schema as the server does
    return std::make_unique<sqlite_user_loader>(path);
}

}  // namespace userapi::store
