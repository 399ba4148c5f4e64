// Users in a SQLite file: the durable store. Every create is committed with
// synchronous=FULL before it returns, so an acknowledged user survives a crash or power cut.
//
// Not thread-safe: one connection, used by one thread (the DB queue's) once the server runs.
// Failures throw storage_error with SQLite's message (for the log, never for a client).
#pragma once

#include <string>

#include "userapi/service/user_repository.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace userapi::service {

class sqlite_user_repository final : public user_repository {
public:
    static constexpr int kSchemaVersion = 1;

    // Opens or creates `path` (its folder too); ":memory:" keeps nothing. Refuses a file that
    // is not SQLite or whose schema is newer than kSchemaVersion, without changing it.
    explicit sqlite_user_repository(const std::string& path);
    ~sqlite_user_repository() override;
    sqlite_user_repository(const sqlite_user_repository&) = delete;
    sqlite_user_repository& operator=(const sqlite_user_repository&) = delete;

    std::optional<user> find(std::int64_t id) override;
    create_outcome create(const new_user& u) override;
    std::size_t size() override;
    void seed(std::int64_t n) override;  // one transaction

    sqlite3* native_handle() { return db_; }

private:
    void exec(const char* sql);
    int schema_version();
    std::int64_t query_int(const char* sql, const char* what);  // one non-negative number
    void migrate();
    [[noreturn]] void fail(const std::string& what);

    sqlite3* db_ = nullptr;
    sqlite3_stmt* find_ = nullptr;
    sqlite3_stmt* insert_ = nullptr;
    std::string path_;
};

}  // namespace userapi::service
