#include "userapi/service/sqlite_user_repository.hpp"

#include <sqlite3.h>

#include <filesystem>

namespace userapi::service {
namespace {

// Resets a statement when a call leaves, whatever path it leaves by.
struct statement_reset {
    sqlite3_stmt* s;
    ~statement_reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
};

constexpr const char* kSchemaV1 =
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"  // AUTOINCREMENT: ids are never reused
    "  name TEXT NOT NULL,"
    "  email TEXT NOT NULL);"
    "CREATE UNIQUE INDEX users_email ON users(email COLLATE NOCASE);"
    "PRAGMA user_version = 1;";

}  // namespace

sqlite_user_repository::sqlite_user_repository(const std::string& path) : path_(path) {
    if (path != ":memory:") {
        const auto dir = std::filesystem::path(path).parent_path();
        std::error_code ec;
        if (!dir.empty()) std::filesystem::create_directories(dir, ec);
        if (ec) throw storage_error(path + ": cannot create folder " + dir.string() + ": " + ec.message());
    }
    try {
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK)
            fail("cannot open");
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_busy_timeout(db_, 1000);  // another writer holds the lock: wait a little, then 503
        // Read the version before anything writes to the file: a file we refuse stays as it is.
        const int version = schema_version();
        if (version > kSchemaVersion)
            fail("schema version " + std::to_string(version) + " is newer than this userapi supports (" +
                 std::to_string(kSchemaVersion) + ")");
        exec("PRAGMA journal_mode = WAL");
        exec("PRAGMA synchronous = FULL");
        migrate();
        if (sqlite3_prepare_v2(db_, "SELECT id, name, email FROM users WHERE id = ?", -1, &find_, nullptr) !=
                SQLITE_OK ||
            sqlite3_prepare_v2(db_, "INSERT INTO users (name, email) VALUES (?, ?)", -1, &insert_, nullptr) !=
                SQLITE_OK)
            fail("cannot prepare statements");
    } catch (...) {
        sqlite3_finalize(find_);
        sqlite3_finalize(insert_);
        sqlite3_close_v2(db_);
        throw;
    }
}

sqlite_user_repository::~sqlite_user_repository() {
    sqlite3_finalize(find_);
    sqlite3_finalize(insert_);
    sqlite3_close_v2(db_);
}

void sqlite_user_repository::fail(const std::string& what) {
    std::string msg = path_ + ": " + what;
    if (db_ && sqlite3_errcode(db_) != SQLITE_OK) msg += std::string(": ") + sqlite3_errmsg(db_);
    throw storage_error(msg);
}

void sqlite_user_repository::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string msg = err ? err : "error";
        sqlite3_free(err);
        throw storage_error(path_ + ": " + msg);
    }
}

std::int64_t sqlite_user_repository::query_int(const char* sql, const char* what) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail(what);
    const int rc = sqlite3_step(s);
    const std::int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    if (v < 0) fail(what);
    return v;
}

int sqlite_user_repository::schema_version() {
    return static_cast<int>(query_int("PRAGMA user_version", "not a usable SQLite database"));
}

void sqlite_user_repository::migrate() {
    if (schema_version() == 0) {
        exec("BEGIN IMMEDIATE");
        try {
            if (schema_version() == 0) exec(kSchemaV1);  // another process may have just done it
            exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }
    // Versions between 1 and kSchemaVersion migrate here, one step at a time.
}

std::optional<user> sqlite_user_repository::find(std::int64_t id) {
    statement_reset reset{find_};
    sqlite3_bind_int64(find_, 1, id);
    const int rc = sqlite3_step(find_);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) throw storage_error(path_ + ": read failed: " + sqlite3_errmsg(db_));
    return user{sqlite3_column_int64(find_, 0), reinterpret_cast<const char*>(sqlite3_column_text(find_, 1)),
                reinterpret_cast<const char*>(sqlite3_column_text(find_, 2))};
}

create_outcome sqlite_user_repository::create(const new_user& u) {
    statement_reset reset{insert_};
    sqlite3_bind_text(insert_, 1, u.name.data(), static_cast<int>(u.name.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(insert_, 2, u.email.data(), static_cast<int>(u.email.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(insert_);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) return {};
    // SQLITE_DONE in autocommit mode: committed and, with synchronous=FULL, on disk.
    if (rc != SQLITE_DONE) throw storage_error(path_ + ": write failed: " + sqlite3_errmsg(db_));
    return {true, user{sqlite3_last_insert_rowid(db_), u.name, u.email}};
}

std::size_t sqlite_user_repository::size() {
    return static_cast<std::size_t>(query_int("SELECT count(*) FROM users", "count failed"));
}

void sqlite_user_repository::seed(std::int64_t n) {
    exec("BEGIN IMMEDIATE");
    try {
        user_repository::seed(n);
        exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

}  // namespace userapi::service
