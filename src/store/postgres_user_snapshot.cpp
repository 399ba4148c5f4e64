// A PostgreSQL store's users as of one moment: a REPEATABLE READ READ ONLY transaction on a
// connection of its own, whose first query fixes the snapshot; the rows come through a cursor,
// a page per FETCH. The id sequence is not transactional: it is read right after the snapshot
// is taken, so next_id may lie above ids a transaction had drawn but not yet committed then;
// those ids are skipped in the target, never reused.
#include <algorithm>

#include "pg_bulk_connection.hpp"
#include "transfer_drivers.hpp"
#include "userapi/store/postgres_user_repository.hpp"

namespace userapi::store {
namespace {

class postgres_user_snapshot final : public user_snapshot {
public:
    explicit postgres_user_snapshot(const std::string& uri) : conn_(uri) {
        conn_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        auto r = conn_.exec("SELECT count(*), coalesce(max(id), 0) FROM users");  // the snapshot starts here
        count_ = r.number(0, 0);
        const auto largest = r.number(0, 1);
        const auto seq = checked_identifier(conn_.exec("SELECT pg_get_serial_sequence('users', 'id')").value(0, 0));
        auto s = conn_.exec("SELECT last_value, is_called FROM " + seq);
        // last_value was handed out when is_called, else it is the next one.
        const auto next = s.number(0, 0) + (std::string_view(s.value(0, 1)) == "t" ? 1 : 0);
        next_id_ = std::max(next, largest + 1);
        conn_.exec("DECLARE users_export NO SCROLL CURSOR FOR SELECT id, name, email, version FROM users ORDER BY id");
    }

    std::int64_t next_id() const override { return next_id_; }
    std::int64_t count() const override { return count_; }

    bool next(std::vector<service::user>& page, std::size_t max) override {
        page.clear();
        if (done_) return false;
        auto r = conn_.exec("FETCH FORWARD " + std::to_string(max) + " FROM users_export");
        for (int i = 0; i < r.rows(); ++i)
            page.push_back({r.number(i, 0), r.value(i, 1), r.value(i, 2), r.number(i, 3)});
        done_ = page.size() < max;
        return !page.empty();
    }

private:
    pg_bulk_connection conn_;  // closing it ends the transaction
    std::int64_t count_ = 0;
    std::int64_t next_id_ = 1;
    bool done_ = false;
};

}  // namespace

std::unique_ptr<user_snapshot> open_postgres_snapshot(const std::string& uri,
                                                      std::chrono::milliseconds connect_timeout) {
    postgres_user_repository schema(uri, connect_timeout);  // waits for the database as a server does
    {
        pg_bulk_connection check(uri);
        if (std::string_view(check.exec("SELECT to_regclass('userapi_schema') IS NOT NULL").value(0, 0)) != "t")
            throw transfer_refused(postgres_user_repository::redacted(uri) +
                                   ": not a userapi store (no userapi_schema table in this database)");
    }
    schema.migrate();  // an older schema is migrated as the server would; a newer refused
    return std::make_unique<postgres_user_snapshot>(uri);
}

}  // namespace userapi::store
