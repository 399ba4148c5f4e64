// Users in a SQLite file: the durable store. Every write is committed with synchronous=FULL
// before it returns, so an acknowledged change survives a crash or power cut. If-Match is part
// of each UPDATE and DELETE statement (WHERE version ...), so the check and the write are one
// atomic step, whatever other process shares the file.
//
// Not thread-safe: one connection, used by one thread (the DB queue's) once the server runs.
// Failures throw service::storage_error with SQLite's message (for the log, never for a client).
#pragma once

#include <string>

#include "userapi/service/user_repository.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace userapi::store {

class sqlite_user_repository final : public service::user_repository {
public:
    static constexpr int kSchemaVersion = 3;  // 2: users.version; 3: idempotency_keys

    // Opens or creates `path` (its folder too); ":memory:" keeps nothing. Refuses a file that
    // is not SQLite or whose schema is newer than kSchemaVersion, without changing it.
    explicit sqlite_user_repository(const std::string& path);
    ~sqlite_user_repository() override;
    sqlite_user_repository(const sqlite_user_repository&) = delete;
    sqlite_user_repository& operator=(const sqlite_user_repository&) = delete;

    std::optional<service::user> find(std::int64_t id) override;
    service::write_result create(const service::new_user& u) override;
    service::write_result update(std::int64_t id, const service::user_patch& patch,
                                 const service::precondition& pre) override;
    service::write_result remove(std::int64_t id, const service::precondition& pre) override;
    // Each in one write transaction (BEGIN IMMEDIATE): the key's lookup, the write and its record.
    service::write_result create_once(const service::new_user& u, const service::idempotency_key& k) override;
    service::write_result update_once(std::int64_t id, const service::user_patch& patch,
                                      const service::precondition& pre, const service::idempotency_key& k) override;
    service::write_result remove_once(std::int64_t id, const service::precondition& pre,
                                      const service::idempotency_key& k) override;
    std::size_t purge_keys(std::chrono::seconds ttl) override;
    std::vector<service::user> list(std::int64_t after, std::size_t limit) override;
    std::size_t size() override;
    void seed(std::int64_t n) override;  // one transaction

    sqlite3* native_handle() { return db_; }

private:
    void exec(const char* sql);
    int schema_version();
    std::int64_t query_int(const char* sql, const char* what);  // one non-negative number
    void migrate();
    void migrate_step(int from, const char* sql);
    sqlite3_stmt* prepare(const char* sql);
    service::write_status missing_or_mismatch(std::int64_t id);  // after a guarded write changed nothing
    [[noreturn]] void fail(const std::string& what);
    template <class Write>
    service::write_result once(const service::idempotency_key& k, Write write);

    sqlite3* db_ = nullptr;
    sqlite3_stmt* find_ = nullptr;
    sqlite3_stmt* insert_ = nullptr;
    sqlite3_stmt* update_ = nullptr;
    sqlite3_stmt* delete_ = nullptr;
    sqlite3_stmt* list_ = nullptr;
    sqlite3_stmt* key_find_ = nullptr;
    sqlite3_stmt* key_put_ = nullptr;
    sqlite3_stmt* key_purge_ = nullptr;
    std::string path_;
};

}  // namespace userapi::store
