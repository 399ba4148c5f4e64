// One SQLite connection for bulk work (export, import, backup), closed when it goes. Failures
// throw service::storage_error with the path and SQLite's message. Not thread-safe.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace userapi::store {

struct statement_finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using sqlite_statement = std::unique_ptr<sqlite3_stmt, statement_finalizer>;

class sqlite_connection {
public:
    // `flags`: SQLITE_OPEN_* (NOMUTEX is added). Extended result codes on, a busy timeout set.
    sqlite_connection(std::string path, int flags, int busy_timeout_ms = 5000);
    ~sqlite_connection();
    sqlite_connection(const sqlite_connection&) = delete;
    sqlite_connection& operator=(const sqlite_connection&) = delete;

    sqlite3* get() const { return db_; }
    const std::string& path() const { return path_; }
    void exec(const char* sql);
    // The first column of the first row as a number; nullopt when there is no row or it is NULL.
    std::optional<std::int64_t> query_int(const char* sql);
    sqlite_statement prepare(const char* sql);
    [[noreturn]] void fail(const std::string& what) const;

private:
    std::string path_;
    sqlite3* db_ = nullptr;
};

// Refuses (transfer_refused) what is not a userapi SQLite store: no such file, ":memory:", or a
// file without the schema (PRAGMA user_version 0). Reads only: a file that is not ours stays as it was.
void require_sqlite_store(const std::string& path);
// What an import may fill: no file (or an empty one), a database without tables, or a userapi
// store; another program's database (tables, no userapi schema) is refused untouched.
void require_new_or_sqlite_store(const std::string& path);

}  // namespace userapi::store
