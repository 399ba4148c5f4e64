#include "userapi/store/sqlite_user_repository.hpp"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>

namespace userapi::store {
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

// Version 2: every user has a version, 1 for those that existed before.
constexpr const char* kMigrateV1toV2 =
    "ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    "PRAGMA user_version = 2;";

// Version 3: Idempotency-Keys, with the outcome of the write each was recorded with.
constexpr const char* kMigrateV2toV3 =
    "CREATE TABLE idempotency_keys ("
    "  scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
    "  status INTEGER NOT NULL, user_id INTEGER, name TEXT, email TEXT, version INTEGER,"
    "  created_ms INTEGER NOT NULL,"  // milliseconds since the epoch
    "  PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_ms);"
    "PRAGMA user_version = 3;";

constexpr const char* kFind = "SELECT id, name, email, version FROM users WHERE id = ?";
constexpr const char* kInsert = "INSERT INTO users (name, email) VALUES (?, ?)";
// One statement: the If-Match check (?4 any, else the versions in the JSON array ?5), the merge
// (NULL keeps a field) and the version bump only when a field changes.
constexpr const char* kUpdate =
    "UPDATE users SET name = coalesce(?1, name), email = coalesce(?2, email),"
    " version = version + (coalesce(?1, name) IS NOT name OR coalesce(?2, email) IS NOT email)"
    " WHERE id = ?3 AND (?4 OR version IN (SELECT value FROM json_each(?5)))"
    " RETURNING id, name, email, version";
constexpr const char* kDelete =
    "DELETE FROM users WHERE id = ?1 AND (?2 OR version IN (SELECT value FROM json_each(?3))) RETURNING version";
constexpr const char* kKeyFind =
    "SELECT fingerprint, status, user_id, name, email, version FROM idempotency_keys"
    " WHERE scope = ?1 AND key = ?2 AND created_ms > ?3";
constexpr const char* kKeyPut = "INSERT OR REPLACE INTO idempotency_keys VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kKeyPurge = "DELETE FROM idempotency_keys WHERE created_ms <= ?1";

std::int64_t epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

const char* text_or_empty(sqlite3_stmt* s, int col) {
    const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
    return t ? t : "";
}
constexpr const char* kList = "SELECT id, name, email, version FROM users WHERE id > ? ORDER BY id LIMIT ?";

service::user read_user(sqlite3_stmt* s) {
    return service::user{sqlite3_column_int64(s, 0), reinterpret_cast<const char*>(sqlite3_column_text(s, 1)),
                         reinterpret_cast<const char*>(sqlite3_column_text(s, 2)), sqlite3_column_int64(s, 3)};
}

void bind_text(sqlite3_stmt* s, int i, const std::optional<std::string>& v) {
    if (v)
        sqlite3_bind_text(s, i, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

// The service::precondition as (?any, ?versions): 1 and "[]", or 0 and "[3,4]".
void bind_precondition(sqlite3_stmt* s, int first, const service::precondition& pre) {
    sqlite3_bind_int(s, first, pre.any ? 1 : 0);
    std::string list = "[";
    for (auto v : pre.versions) list += (list.size() > 1 ? "," : "") + std::to_string(v);
    list += "]";
    sqlite3_bind_text(s, first + 1, list.data(), static_cast<int>(list.size()), SQLITE_TRANSIENT);
}

}  // namespace

sqlite_user_repository::sqlite_user_repository(const std::string& path) : path_(path) {
    if (path != ":memory:") {
        const auto dir = std::filesystem::path(path).parent_path();
        std::error_code ec;
        if (!dir.empty()) std::filesystem::create_directories(dir, ec);
        if (ec) throw service::storage_error(path + ": cannot create folder " + dir.string() + ": " + ec.message());
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
        find_ = prepare(kFind);
        insert_ = prepare(kInsert);
        update_ = prepare(kUpdate);
        delete_ = prepare(kDelete);
        list_ = prepare(kList);
        key_find_ = prepare(kKeyFind);
        key_put_ = prepare(kKeyPut);
        key_purge_ = prepare(kKeyPurge);
    } catch (...) {
        for (auto* s : {find_, insert_, update_, delete_, list_, key_find_, key_put_, key_purge_}) sqlite3_finalize(s);
        sqlite3_close_v2(db_);
        throw;
    }
}

sqlite_user_repository::~sqlite_user_repository() {
    for (auto* s : {find_, insert_, update_, delete_, list_, key_find_, key_put_, key_purge_}) sqlite3_finalize(s);
    sqlite3_close_v2(db_);
}

void sqlite_user_repository::fail(const std::string& what) {
    std::string msg = path_ + ": " + what;
    if (db_ && sqlite3_errcode(db_) != SQLITE_OK) msg += std::string(": ") + sqlite3_errmsg(db_);
    throw service::storage_error(msg);
}

sqlite3_stmt* sqlite_user_repository::prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail("cannot prepare statements");
    return s;
}

void sqlite_user_repository::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string msg = err ? err : "error";
        sqlite3_free(err);
        throw service::storage_error(path_ + ": " + msg);
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

// One migration step, from schema version `from`, in one write transaction: all or nothing.
// The version is read again inside it, since another process may have just done the step.
void sqlite_user_repository::migrate_step(int from, const char* sql) {
    if (schema_version() != from) return;
    exec("BEGIN IMMEDIATE");
    try {
        if (schema_version() == from) exec(sql);
        exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void sqlite_user_repository::migrate() {
    migrate_step(0, kSchemaV1);
    migrate_step(1, kMigrateV1toV2);
    migrate_step(2, kMigrateV2toV3);
}

std::optional<service::user> sqlite_user_repository::find(std::int64_t id) {
    statement_reset reset{find_};
    sqlite3_bind_int64(find_, 1, id);
    const int rc = sqlite3_step(find_);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) throw service::storage_error(path_ + ": read failed: " + sqlite3_errmsg(db_));
    return read_user(find_);
}

service::write_result sqlite_user_repository::create(const service::new_user& u) {
    statement_reset reset{insert_};
    sqlite3_bind_text(insert_, 1, u.name.data(), static_cast<int>(u.name.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(insert_, 2, u.email.data(), static_cast<int>(u.email.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(insert_);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) return {service::write_status::email_taken, {}};
    // SQLITE_DONE in autocommit mode: committed and, with synchronous=FULL, on disk.
    if (rc != SQLITE_DONE) throw service::storage_error(path_ + ": write failed: " + sqlite3_errmsg(db_));
    return {service::write_status::done, service::user{sqlite3_last_insert_rowid(db_), u.name, u.email, 1}};
}

service::write_status sqlite_user_repository::missing_or_mismatch(std::int64_t id) {
    return find(id) ? service::write_status::precondition_failed : service::write_status::not_found;
}

service::write_result sqlite_user_repository::update(std::int64_t id, const service::user_patch& patch,
                                                     const service::precondition& pre) {
    std::optional<service::user> stored;
    {
        statement_reset reset{update_};
        bind_text(update_, 1, patch.name);
        bind_text(update_, 2, patch.email);
        sqlite3_bind_int64(update_, 3, id);
        bind_precondition(update_, 4, pre);
        int rc = sqlite3_step(update_);
        if (rc == SQLITE_CONSTRAINT_UNIQUE) return {service::write_status::email_taken, {}};
        if (rc == SQLITE_ROW) {
            stored = read_user(update_);
            rc = sqlite3_step(update_);  // to SQLITE_DONE: the statement, and so the commit, is complete
        }
        if (rc != SQLITE_DONE) throw service::storage_error(path_ + ": write failed: " + sqlite3_errmsg(db_));
    }
    if (stored) return {service::write_status::done, std::move(*stored)};
    return {missing_or_mismatch(id), {}};  // nothing was written: only say why
}

service::write_result sqlite_user_repository::remove(std::int64_t id, const service::precondition& pre) {
    {
        statement_reset reset{delete_};
        sqlite3_bind_int64(delete_, 1, id);
        bind_precondition(delete_, 2, pre);
        int rc = sqlite3_step(delete_);
        std::int64_t deleted = 0;
        if (rc == SQLITE_ROW) {
            deleted = sqlite3_column_int64(delete_, 0);
            rc = sqlite3_step(delete_);
        }
        if (rc != SQLITE_DONE) throw service::storage_error(path_ + ": write failed: " + sqlite3_errmsg(db_));
        if (deleted > 0) return {service::write_status::done, {id, {}, {}, deleted}};
    }
    return {missing_or_mismatch(id), {}};
}

// The key's recorded outcome, or the write's, recorded in the same transaction.
template <class Write>
service::write_result sqlite_user_repository::once(const service::idempotency_key& k, Write write) {
    const auto now = epoch_ms();
    exec("BEGIN IMMEDIATE");
    try {
        std::optional<service::write_result> prior;
        {
            statement_reset reset{key_find_};
            sqlite3_bind_text(key_find_, 1, k.scope.data(), static_cast<int>(k.scope.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(key_find_, 2, k.key.data(), static_cast<int>(k.key.size()), SQLITE_TRANSIENT);
            sqlite3_bind_int64(key_find_, 3, now - std::chrono::milliseconds(k.ttl).count());
            const int rc = sqlite3_step(key_find_);
            if (rc == SQLITE_ROW) {
                if (k.fingerprint != text_or_empty(key_find_, 0)) {
                    prior = service::write_result{service::write_status::done, {}, service::key_outcome::mismatch};
                } else {
                    prior = service::write_result{static_cast<service::write_status>(sqlite3_column_int(key_find_, 1)),
                                                  {sqlite3_column_int64(key_find_, 2), text_or_empty(key_find_, 3),
                                                   text_or_empty(key_find_, 4), sqlite3_column_int64(key_find_, 5)},
                                                  service::key_outcome::replayed};
                }
            } else if (rc != SQLITE_DONE) {
                fail("read failed");
            }
        }
        if (prior) {
            exec("COMMIT");
            return *prior;
        }
        auto out = write();
        {
            statement_reset reset{key_put_};
            sqlite3_bind_text(key_put_, 1, k.scope.data(), static_cast<int>(k.scope.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(key_put_, 2, k.key.data(), static_cast<int>(k.key.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(key_put_, 3, k.fingerprint.data(), static_cast<int>(k.fingerprint.size()),
                              SQLITE_TRANSIENT);
            sqlite3_bind_int(key_put_, 4, static_cast<int>(out.status));
            sqlite3_bind_int64(key_put_, 5, out.stored.id);
            sqlite3_bind_text(key_put_, 6, out.stored.name.data(), static_cast<int>(out.stored.name.size()),
                              SQLITE_TRANSIENT);
            sqlite3_bind_text(key_put_, 7, out.stored.email.data(), static_cast<int>(out.stored.email.size()),
                              SQLITE_TRANSIENT);
            sqlite3_bind_int64(key_put_, 8, out.stored.version);
            sqlite3_bind_int64(key_put_, 9, now);
            if (sqlite3_step(key_put_) != SQLITE_DONE) fail("write failed");
        }
        exec("COMMIT");  // the write and its key, on disk together
        return out;
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

service::write_result sqlite_user_repository::create_once(const service::new_user& u,
                                                          const service::idempotency_key& k) {
    return once(k, [&] { return create(u); });
}

service::write_result sqlite_user_repository::update_once(std::int64_t id, const service::user_patch& patch,
                                                          const service::precondition& pre,
                                                          const service::idempotency_key& k) {
    return once(k, [&] { return update(id, patch, pre); });
}

service::write_result sqlite_user_repository::remove_once(std::int64_t id, const service::precondition& pre,
                                                          const service::idempotency_key& k) {
    return once(k, [&] { return remove(id, pre); });
}

std::size_t sqlite_user_repository::purge_keys(std::chrono::seconds ttl) {
    statement_reset reset{key_purge_};
    sqlite3_bind_int64(key_purge_, 1, epoch_ms() - std::chrono::milliseconds(ttl).count());
    if (sqlite3_step(key_purge_) != SQLITE_DONE) fail("purge failed");
    return static_cast<std::size_t>(sqlite3_changes(db_));
}

std::vector<service::user> sqlite_user_repository::list(std::int64_t after, std::size_t limit) {
    statement_reset reset{list_};
    sqlite3_bind_int64(list_, 1, after);
    sqlite3_bind_int64(list_, 2, static_cast<sqlite3_int64>(limit));
    std::vector<service::user> out;
    int rc;
    while ((rc = sqlite3_step(list_)) == SQLITE_ROW) out.push_back(read_user(list_));
    if (rc != SQLITE_DONE) throw service::storage_error(path_ + ": read failed: " + sqlite3_errmsg(db_));
    return out;
}

std::size_t sqlite_user_repository::size() {
    return static_cast<std::size_t>(query_int("SELECT count(*) FROM users", "count failed"));
}

void sqlite_user_repository::seed(std::int64_t n) {
    exec("BEGIN IMMEDIATE");
    try {
        service::user_repository::seed(n);
        exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

}  // namespace userapi::store
