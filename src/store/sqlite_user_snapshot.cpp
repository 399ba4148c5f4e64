// A SQLite store's users as of one moment: a read transaction (BEGIN, then the first read) on a
// connection of its own. In WAL mode, every userapi store's mode, it sees neither the commits
// that come after it nor holds up the server's writers; it only keeps checkpoints from
// recycling the WAL until it ends. The rows come from one statement stepping through the
// table in id order, so only a page of them is in memory at a time.
#include <algorithm>

#include "sqlite_connection.hpp"
#include "transfer_drivers.hpp"
#include "userapi/store/sqlite_user_repository.hpp"

namespace userapi::store {
namespace {

class sqlite_user_snapshot final : public user_snapshot {
public:
    explicit sqlite_user_snapshot(const std::string& path) : conn_(path, SQLITE_OPEN_READWRITE) {
        conn_.exec("BEGIN");
        count_ = conn_.query_int("SELECT count(*) FROM users").value_or(0);  // the snapshot starts here
        const auto largest = conn_.query_int("SELECT max(id) FROM users").value_or(0);
        // AUTOINCREMENT keeps the largest id ever assigned, deleted or not, in sqlite_sequence.
        const auto assigned = conn_.query_int("SELECT seq FROM sqlite_sequence WHERE name = 'users'").value_or(0);
        next_id_ = std::max(largest, assigned) + 1;
        rows_ = conn_.prepare("SELECT id, name, email, version FROM users ORDER BY id");
    }
    ~sqlite_user_snapshot() override {
        rows_.reset();
        sqlite3_exec(conn_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }

    std::int64_t next_id() const override { return next_id_; }
    std::int64_t count() const override { return count_; }

    bool next(std::vector<service::user>& page, std::size_t max) override {
        page.clear();
        while (!done_ && page.size() < max) {
            const int rc = sqlite3_step(rows_.get());
            if (rc == SQLITE_DONE) {
                done_ = true;
                break;
            }
            if (rc != SQLITE_ROW) conn_.fail("read failed");
            sqlite3_stmt* s = rows_.get();
            auto text = [s](int col) {
                const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
                return std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
            };
            page.push_back({sqlite3_column_int64(s, 0), text(1), text(2), sqlite3_column_int64(s, 3)});
        }
        return !page.empty();
    }

private:
    sqlite_connection conn_;
    sqlite_statement rows_;
    std::int64_t count_ = 0;
    std::int64_t next_id_ = 1;
    bool done_ = false;
};

}  // namespace

std::unique_ptr<user_snapshot> open_sqlite_snapshot(const std::string& path) {
    require_sqlite_store(path);
    { sqlite_user_repository schema(path); }  // an older schema is migrated as the server would; a newer refused
    return std::make_unique<sqlite_user_snapshot>(path);
}

}  // namespace userapi::store
