// Users in PostgreSQL: the store several instances share. One repository is one connection,
// used by one DB-queue slot (one thread at a time). The DB queue's threads exist to wait on
// the database, so no I/O thread ever does; and every wait has a deadline
// (--db-operation-timeout-ms, see pg_connection): a server that stops answering holds a slot
// no longer than that, the statement is cancelled and the connection replaced.
//
// Every write is one statement, so one transaction: the If-Match check is in its WHERE
// clause, and it sends NOTIFY userapi_users with the user's id, delivered to every listening
// instance when the write commits (see postgres_watch). A 201 or 200 is only sent after the
// statement returned, that is after the commit.
//
// Failures throw service::storage_error, whose maybe_performed() says whether the statement
// was sent and its answer never came (the connection broke, or the deadline passed): only then
// may a write have happened. A statement is never sent on a connection the server has already
// closed (that is checked first, without waiting), so a write is sent again on a fresh
// connection only when it surely was not sent; a read whose connection broke after it was sent
// is sent once more on a fresh connection before it counts as failed. After a failed connect,
// the next one is tried no sooner than a backoff that grows from 100 ms to 5 s.
//
// Not thread-safe: one slot, one thread at a time.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "userapi/service/user_repository.hpp"
#include "userapi/store/pg_connection.hpp"

namespace userapi::store {

class postgres_user_repository final : public service::user_repository {
public:
    static constexpr int kSchemaVersion = 2;  // 2: userapi_idempotency
    static constexpr const char* kChannel = "userapi_users";

    // Called with this connection's backend process id when it connects (and 0 when it is
    // lost), so the watch can tell this instance's own notifications from others'.
    using pid_listener = std::function<void(int old_pid, int new_pid)>;

    // Connects, retrying until `connect_timeout` has passed, then prepares the statements.
    // Throws service::storage_error when it cannot (the server then exits 2 naming --data).
    // `operation_timeout` bounds every statement (and every reconnect) from then on.
    postgres_user_repository(std::string conninfo, std::chrono::milliseconds connect_timeout, pid_listener on_pid = {},
                             std::chrono::milliseconds operation_timeout = std::chrono::milliseconds(5000));
    ~postgres_user_repository() override;
    postgres_user_repository(const postgres_user_repository&) = delete;
    postgres_user_repository& operator=(const postgres_user_repository&) = delete;

    // Creates or migrates the schema under an advisory lock, so instances starting together
    // against an empty database all succeed. Refuses a newer schema (service::storage_error).
    void migrate();

    std::optional<service::user> find(std::int64_t id) override;
    service::write_result create(const service::new_user& u) override;
    service::write_result update(std::int64_t id, const service::user_patch& patch,
                                 const service::precondition& pre) override;
    service::write_result remove(std::int64_t id, const service::precondition& pre) override;
    // Each one statement, one transaction: userapi_write_once() (see the schema).
    service::write_result create_once(const service::new_user& u, const service::idempotency_key& k) override;
    service::write_result update_once(std::int64_t id, const service::user_patch& patch,
                                      const service::precondition& pre, const service::idempotency_key& k) override;
    service::write_result remove_once(std::int64_t id, const service::precondition& pre,
                                      const service::idempotency_key& k) override;
    std::size_t purge_keys(std::chrono::seconds ttl) override;
    std::vector<service::user> list(std::int64_t after, std::size_t limit) override;
    std::size_t size() override;
    // Seeds under the schema lock, re-checking that the table is empty: one instance seeds.
    void seed(std::int64_t n) override;
    // Tells every instance to empty its cache (NOTIFY userapi_users, '*').
    void announce_clear() override;
    bool shared() const override { return true; }

    // The URI with any password replaced by "***", for logs and errors (redact_conninfo).
    static std::string redacted(const std::string& conninfo);

private:
    using time_point = std::chrono::steady_clock::time_point;
    enum class access { read, write };  // a read may be sent again after its connection broke
    void connect(time_point deadline);
    void ensure_connected(time_point deadline);
    void dropped();  // the connection is gone: forget its pid
    // One prepared statement, by the operation timeout. It may go out on a fresh connection (see
    // above) unless `pinned_`: inside BEGIN ... COMMIT, where that would leave the transaction.
    pg_result_ptr run(const char* statement, std::initializer_list<const char*> params, access kind);
    // One text statement of the start-up work (migrate, seed), with its own deadline; only the
    // `first` of a sequence may (re)connect.
    pg_result_ptr exec(const std::string& sql, const char* what, bool first = false);
    [[noreturn]] void fail(const std::string& what, bool maybe_performed = false);
    service::write_result write_once(const char* kind, const service::idempotency_key& k, std::int64_t id,
                                     const char* name, const char* email, const service::precondition& pre);

    std::string conninfo_;
    pid_listener on_pid_;
    std::chrono::milliseconds operation_timeout_;
    std::chrono::milliseconds startup_timeout_;  // migrate and seed: the larger of both timeouts
    pg_connection conn_;
    int pid_ = 0;
    bool pinned_ = false;  // a transaction is open on this connection: statements stay on it
    std::chrono::milliseconds backoff_{100};
    std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace userapi::store
