// Users into an empty PostgreSQL store: one transaction from the emptiness check to the commit,
// holding the users table in SHARE ROW EXCLUSIVE mode (instances may read it, their writes wait),
// fed by one COPY per batch. Each batch runs in a savepoint, so an email conflict can be traced
// to its user before the load is given up. The id sequence is set with ALTER SEQUENCE RESTART,
// which, unlike setval(), is undone with the transaction. If the process dies midway, the
// server aborts the transaction with the connection: nothing was written.
#include <unordered_map>

#include "pg_bulk_connection.hpp"
#include "transfer_drivers.hpp"
#include "userapi/service/user_repository.hpp"
#include "userapi/store/postgres_user_repository.hpp"

namespace userapi::store {
namespace {

// COPY's text format: a backslash, tab, line feed or carriage return in a value is escaped.
void append_copy_text(std::string& out, const std::string& v) {
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
}

// A text[] literal: every element double-quoted, quotes and backslashes escaped.
std::string text_array(const std::vector<service::user>& batch) {
    std::string a = "{";
    for (const auto& u : batch) {
        a += a.size() > 1 ? ",\"" : "\"";
        for (char c : u.email) {
            if (c == '"' || c == '\\') a += '\\';
            a += c;
        }
        a += '"';
    }
    return a + "}";
}

std::string ascii_lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

class postgres_user_loader final : public user_loader {
public:
    postgres_user_loader(const std::string& uri, std::unique_ptr<postgres_user_repository> repo)
        : repo_(std::move(repo)), conn_(uri), where_(postgres_user_repository::redacted(uri)) {
        conn_.exec("BEGIN");
        conn_.exec("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE");  // no write can slip in before the commit
        sequence_ = checked_identifier(conn_.exec("SELECT pg_get_serial_sequence('users', 'id')").value(0, 0));
        const auto users = conn_.exec("SELECT count(*) FROM users").number(0, 0);
        if (users > 0)
            throw transfer_refused(where_ + " holds " + std::to_string(users) + " users: import needs an empty store");
        auto s = conn_.exec("SELECT s.last_value, s.is_called, p.seqstart FROM " + sequence_ +
                            " s, pg_sequence p WHERE p.seqrelid = '" + sequence_ + "'::regclass");
        if (std::string_view(s.value(0, 1)) == "t" || s.number(0, 0) != s.number(0, 2))
            throw transfer_refused(where_ +
                                   " has assigned ids (its users were deleted): import needs a store that "
                                   "never assigned an id");
    }

    std::size_t batch_size() const override { return 10000; }

    std::optional<email_conflict> add(const std::vector<service::user>& batch) override {
        if (failed_) throw std::logic_error("add() after a conflict");
        text_.clear();
        for (const auto& u : batch) {
            text_ += std::to_string(u.id);
            text_ += '\t';
            append_copy_text(text_, u.name);
            text_ += '\t';
            append_copy_text(text_, u.email);
            text_ += '\t';
            text_ += std::to_string(u.version);
            text_ += '\n';
        }
        conn_.exec("SAVEPOINT batch");
        pg_bulk_result start(PQexec(conn_.get(), "COPY users (id, name, email, version) FROM STDIN"));
        if (PQresultStatus(start.get()) != PGRES_COPY_IN) conn_.fail("cannot start COPY", start.get());
        if (PQputCopyData(conn_.get(), text_.data(), static_cast<int>(text_.size())) != 1 ||
            PQputCopyEnd(conn_.get(), nullptr) != 1)
            conn_.fail("COPY failed");
        pg_bulk_result done(PQgetResult(conn_.get()));
        while (PGresult* more = PQgetResult(conn_.get())) PQclear(more);
        if (PQresultStatus(done.get()) == PGRES_COMMAND_OK) {
            conn_.exec("RELEASE SAVEPOINT batch");
            return std::nullopt;
        }
        const char* state = PQresultErrorField(done.get(), PG_DIAG_SQLSTATE);
        if (!state || std::string_view(state) != "23505") conn_.fail("COPY failed", done.get());
        conn_.exec("ROLLBACK TO SAVEPOINT batch");
        failed_ = true;
        if (auto c = conflict_in(batch)) return c;
        conn_.fail("COPY failed", done.get());  // a unique violation neither query could place
    }

    void commit(std::int64_t next_id) override {
        if (failed_) throw std::logic_error("commit() after a conflict");
        conn_.exec("ALTER SEQUENCE " + sequence_ + " RESTART WITH " + std::to_string(next_id));
        conn_.exec("COMMIT");
        // Instances on this database may remember "no such user" for ids just filled in.
        try {
            repo_->announce_clear();
        } catch (const service::storage_error&) {
            // Committed all the same; those entries end with --cache-negative-ttl-ms.
        }
    }

private:
    // The first user of the batch whose email an earlier user has: one of an earlier batch
    // (asked of the table, through its lower(email) index) or of this batch.
    std::optional<email_conflict> conflict_in(const std::vector<service::user>& batch) {
        std::optional<email_conflict> found;
        const auto emails = text_array(batch);
        auto r = conn_.exec(
            "SELECT e.ord - 1, u.id FROM unnest($1::text[]) WITH ORDINALITY AS e(email, ord)"
            " JOIN users u ON lower(u.email) = lower(e.email) ORDER BY e.ord LIMIT 1",
            {emails.c_str()});
        if (r.rows() == 1) found = email_conflict{static_cast<std::size_t>(r.number(0, 0)), r.number(0, 1)};
        std::unordered_map<std::string, std::size_t> first;
        const std::size_t end = found ? found->index : batch.size();
        for (std::size_t i = 0; i < end; ++i) {
            const auto [at, fresh] = first.emplace(ascii_lower(batch[i].email), i);
            if (!fresh) return email_conflict{i, batch[at->second].id};
        }
        return found;
    }

    std::unique_ptr<postgres_user_repository> repo_;  // the schema's owner, and the clear announcement
    pg_bulk_connection conn_;                         // closing it without COMMIT aborts the load
    std::string where_;
    std::string sequence_;
    std::string text_;  // the COPY data of one batch
    bool failed_ = false;
};

}  // namespace

std::unique_ptr<user_loader> open_postgres_loader(const std::string& uri, std::chrono::milliseconds connect_timeout) {
    auto repo = std::make_unique<postgres_user_repository>(uri, connect_timeout);
    repo->migrate();  // creates or migrates the schema as the server does; refuses a newer one
    return std::make_unique<postgres_user_loader>(uri, std::move(repo));
}

}  // namespace userapi::store
