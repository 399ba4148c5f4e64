#include "pg_bulk_connection.hpp"

#include <string_view>
#include <vector>

#include "userapi/service/user_repository.hpp"
#include "userapi/store/conninfo.hpp"

namespace userapi::store {
namespace {

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

bool succeeded(const PGresult* r) {
    const auto st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

}  // namespace

pg_bulk_connection::pg_bulk_connection(const std::string& uri) : uri_(uri), where_(redact_conninfo(uri)) {
    // A peer that dies or a network that drops every packet ends the work within about half a
    // minute instead of never (TCP keepalives and user timeout); the URI's own values win, as
    // the keywords it expands to come after these.
    const char* keys[] = {"connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
    const char* values[] = {"10", "1", "10", "5", "3", "30000", uri.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn_) != CONNECTION_OK) {
        const std::string why = trimmed(redact_libpq_message(PQerrorMessage(conn_), uri_));
        PQfinish(conn_);
        conn_ = nullptr;
        throw service::storage_error(where_ + ": cannot connect: " + why);
    }
    if (PQsetClientEncoding(conn_, "UTF8") != 0) fail("cannot use UTF-8");
}

pg_bulk_connection::~pg_bulk_connection() {
    if (conn_) PQfinish(conn_);
}

void pg_bulk_connection::fail(const std::string& what, const PGresult* r) const {
    std::string detail = r ? PQresultErrorMessage(r) : "";
    if (detail.empty() && conn_) detail = PQerrorMessage(conn_);
    detail = trimmed(redact_libpq_message(detail, uri_));
    throw service::storage_error(where_ + ": " + what + (detail.empty() ? "" : ": " + detail));
}

pg_bulk_result pg_bulk_connection::exec(const std::string& sql) {
    pg_bulk_result r(PQexec(conn_, sql.c_str()));
    if (!succeeded(r.get())) fail("statement failed", r.get());
    return r;
}

pg_bulk_result pg_bulk_connection::exec(const char* sql, std::initializer_list<const char*> params) {
    const std::vector<const char*> values(params);
    pg_bulk_result r(
        PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
    if (!succeeded(r.get())) fail("statement failed", r.get());
    return r;
}

std::string checked_identifier(const std::string& name) {
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '"'))
            throw service::storage_error("unexpected sequence name " + name);
    if (name.empty()) throw service::storage_error("the users table has no id sequence");
    return name;
}

}  // namespace userapi::store
