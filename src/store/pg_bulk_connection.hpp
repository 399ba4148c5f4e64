// One PostgreSQL connection for bulk work (export, import), blocking libpq calls, closed when it
// goes. Failures throw service::storage_error; the URI's password never appears in them
// (redact_conninfo, redact_libpq_message).
// Not thread-safe.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>

namespace userapi::store {

struct bulk_result_clear {
    void operator()(PGresult* r) const { PQclear(r); }
};

class pg_bulk_result {
public:
    explicit pg_bulk_result(PGresult* r) : r_(r) {}
    PGresult* get() const { return r_.get(); }
    int rows() const { return PQntuples(r_.get()); }
    const char* value(int row, int col) const { return PQgetvalue(r_.get(), row, col); }
    std::int64_t number(int row, int col) const { return std::stoll(value(row, col)); }
    bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }

private:
    std::unique_ptr<PGresult, bulk_result_clear> r_;
};

class pg_bulk_connection {
public:
    // One attempt, UTF-8 text, TCP keepalives and a TCP user timeout of 30 s unless the URI sets them.
    explicit pg_bulk_connection(const std::string& uri);
    ~pg_bulk_connection();
    pg_bulk_connection(const pg_bulk_connection&) = delete;
    pg_bulk_connection& operator=(const pg_bulk_connection&) = delete;

    PGconn* get() const { return conn_; }
    pg_bulk_result exec(const std::string& sql);  // a command or a query that must succeed
    pg_bulk_result exec(const char* sql, std::initializer_list<const char*> params);
    [[noreturn]] void fail(const std::string& what, const PGresult* r = nullptr) const;

private:
    std::string uri_;    // to mask what libpq's messages repeat of its secrets
    std::string where_;  // the redacted URI
    PGconn* conn_ = nullptr;
};

// The text of an SQL identifier from PostgreSQL itself (such as pg_get_serial_sequence's),
// checked to hold nothing but a schema-qualified name.
std::string checked_identifier(const std::string& name);

}  // namespace userapi::store
