#include "sqlite_connection.hpp"

#include <filesystem>

#include "userapi/service/user_repository.hpp"
#include "userapi/store/user_transfer.hpp"

namespace userapi::store {

sqlite_connection::sqlite_connection(std::string path, int flags, int busy_timeout_ms) : path_(std::move(path)) {
    if (sqlite3_open_v2(path_.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close_v2(db_);
        throw service::storage_error(path_ + ": cannot open: " + why);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_timeout_ms);
}

sqlite_connection::~sqlite_connection() { sqlite3_close_v2(db_); }

void sqlite_connection::fail(const std::string& what) const {
    throw service::storage_error(path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

void sqlite_connection::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string msg = err ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        throw service::storage_error(path_ + ": " + msg);
    }
}

sqlite_statement sqlite_connection::prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail("cannot prepare a statement");
    return sqlite_statement(s);
}

std::optional<std::int64_t> sqlite_connection::query_int(const char* sql) {
    auto s = prepare(sql);
    const int rc = sqlite3_step(s.get());
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fail("read failed");
    if (sqlite3_column_type(s.get(), 0) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(s.get(), 0);
}

void require_sqlite_store(const std::string& path) {
    if (path == ":memory:") throw transfer_refused(":memory: is a store of its own process: nothing to read");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) throw transfer_refused(path + ": no such file");
    sqlite_connection c(path, SQLITE_OPEN_READWRITE);
    const auto version = c.query_int("PRAGMA user_version");
    if (!version) c.fail("not a usable SQLite database");
    if (*version == 0) throw transfer_refused(path + ": not a userapi store (it has no users table)");
}

void require_new_or_sqlite_store(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0) return;
    sqlite_connection c(path, SQLITE_OPEN_READWRITE);
    const auto version = c.query_int("PRAGMA user_version");
    if (!version) c.fail("not a usable SQLite database");
    if (*version == 0 && c.query_int("SELECT count(*) FROM sqlite_master").value_or(0) > 0)
        throw transfer_refused(path + ": not a userapi store (a SQLite database with tables of its own)");
}

}  // namespace userapi::store
