#include "userapi/app/user_moves.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "userapi/app/line_reader.hpp"
#include "userapi/app/progress.hpp"
#include "userapi/service/user_checksum.hpp"
#include "userapi/service/user_export_format.hpp"
#include "userapi/service/user_repository.hpp"
#include "userapi/store/user_transfer.hpp"

namespace userapi::app {
namespace {

constexpr std::size_t kExportPage = 5000;
constexpr std::size_t kWriteChunk = 1 << 16;

// A store opened for the move: a refusal or a store that cannot be opened is bad input naming
// the option, as when the server starts on it.
template <class F>
auto open_store(const char* option, F open) {
    try {
        return open();
    } catch (const store::transfer_refused& e) {
        throw bad_input(std::string(option) + " " + e.what());
    } catch (const service::storage_error& e) {
        throw bad_input(std::string(option) + " " + e.what());
    }
}

void write_all(int fd, const std::string& bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), "cannot write the export");
        at += static_cast<std::size_t>(n);
    }
}

[[noreturn]] void refuse_line(std::size_t line, const std::string& why) {
    throw bad_input("line " + std::to_string(line) + ": " + why);
}

core::system_clock real_clock;

progress make_progress(const char* what, std::int64_t total, const move_options& o) {
    return progress(what, total, "users", *o.log, o.terminal, o.clock ? *o.clock : real_clock);
}

}  // namespace

std::int64_t export_users(const std::string& data, int fd, const move_options& o) {
    auto snap = open_store("--data", [&] { return store::open_snapshot(data, o.connect_timeout); });
    auto p = make_progress("export", snap->count(), o);
    std::string out = service::format_export_header({snap->next_id(), snap->count()}) + "\n";
    std::vector<service::user> page;
    std::int64_t written = 0;
    while (snap->next(page, kExportPage)) {
        for (const auto& u : page) {
            service::append_export_line(out, u);
            if (out.size() >= kWriteChunk) {
                write_all(fd, out);
                out.clear();
            }
            p.update(++written);
        }
    }
    write_all(fd, out);
    if (written != snap->count())  // one snapshot cannot disagree with itself
        throw std::runtime_error("the snapshot counted " + std::to_string(snap->count()) + " users but held " +
                                 std::to_string(written));
    p.finish(written);
    return written;
}

std::int64_t import_users(const std::string& data, int fd, const move_options& o) {
    line_reader in(fd, service::kMaxExportLineBytes);
    const std::string too_long = "longer than " + std::to_string(service::kMaxExportLineBytes) + " bytes";
    std::string_view line;
    switch (in.next(line)) {
        case line_reader::status::end:
            refuse_line(1, "the input is empty: expected the header {\"userapi_export\":1,...}");
        case line_reader::status::too_long:
            refuse_line(1, too_long);
        case line_reader::status::line:
            break;
    }
    const auto parsed = service::parse_export_header(line);
    if (const auto* e = std::get_if<service::export_line_error>(&parsed)) refuse_line(1, e->detail);
    const auto header = std::get<service::export_header>(parsed);

    auto loader = open_store("--data", [&] { return store::open_loader(data, o.connect_timeout); });
    auto p = make_progress("import", header.users, o);
    std::vector<service::user> batch;
    batch.reserve(loader->batch_size());
    std::size_t batch_line = 0;  // the line of batch[0]
    std::int64_t count = 0, last_id = 0;
    auto flush = [&] {
        if (batch.empty()) return;
        if (const auto c = loader->add(batch))
            refuse_line(batch_line + c->index, "email \"" + batch[c->index].email + "\" is also user " +
                                                   std::to_string(c->other_id) +
                                                   "'s (emails are compared case-insensitively)");
        p.update(count);
        batch.clear();
    };
    for (;;) {
        const auto st = in.next(line);
        if (st == line_reader::status::end) break;
        const std::size_t n = in.number();
        if (st == line_reader::status::too_long) refuse_line(n, too_long);
        if (line.find_first_not_of(" \t\r") == std::string_view::npos)
            refuse_line(n, "an empty line: every line after the header is a user");
        if (++count > header.users)
            refuse_line(n, "more users than the header's \"users\": " + std::to_string(header.users) + " (line 1)");
        auto user = service::parse_export_user(line);
        if (const auto* e = std::get_if<service::export_line_error>(&user)) refuse_line(n, e->detail);
        auto& u = std::get<service::user>(user);
        if (u.id == last_id)
            refuse_line(n, "duplicate id " + std::to_string(u.id) + " (line " + std::to_string(n - 1) + " has it too)");
        if (u.id < last_id)
            refuse_line(n, "id " + std::to_string(u.id) + " comes after id " + std::to_string(last_id) + " (line " +
                               std::to_string(n - 1) + "): users are in increasing id order, each id once");
        if (u.id >= header.next_id)
            refuse_line(n, "id " + std::to_string(u.id) + " is not below the header's next_id " +
                               std::to_string(header.next_id) + " (line 1): next_id must be above every id");
        last_id = u.id;
        if (batch.empty()) batch_line = n;
        batch.push_back(std::move(u));
        if (batch.size() == loader->batch_size()) flush();
    }
    flush();
    if (count != header.users)
        refuse_line(1, "the header's \"users\" is " + std::to_string(header.users) + " but " + std::to_string(count) +
                           (count == 1 ? " user line follows" : " user lines follow"));
    loader->commit(header.next_id);
    p.finish(count);
    return count;
}

migrate_check migrate_users(const std::string& from, const std::string& to, const move_options& o) {
    auto snap = open_store("--from", [&] { return store::open_snapshot(from, o.connect_timeout); });
    auto loader = open_store("--to", [&] { return store::open_loader(to, o.connect_timeout); });
    auto p = make_progress("migrate", snap->count(), o);
    service::user_checksum copied;
    std::vector<service::user> page;
    while (snap->next(page, loader->batch_size())) {
        for (const auto& u : page) {
            if (auto e = service::user_record_problem(u); !e.empty())
                throw bad_input("--from: user " + std::to_string(u.id) + ": " + e +
                                " (correct it there, or export, edit the file and import it)");
            copied.add(u);
        }
        if (const auto c = loader->add(page))
            throw bad_input("--from: user " + std::to_string(page[c->index].id) + ": email \"" + page[c->index].email +
                            "\" is also user " + std::to_string(c->other_id) + "'s (compared case-insensitively)");
        p.update(copied.count());
    }
    if (copied.count() != snap->count())
        throw std::runtime_error("the source's snapshot counted " + std::to_string(snap->count()) + " users but held " +
                                 std::to_string(copied.count()));
    const auto next_id = snap->next_id();
    loader->commit(next_id);
    loader.reset();
    snap.reset();
    p.finish(copied.count());

    // The check: the target read back through a snapshot of its own, hashed the same way.
    std::unique_ptr<store::user_snapshot> back;
    try {
        back = store::open_snapshot(to, o.connect_timeout);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("the copy is committed, but the check cannot read it: ") + e.what());
    }
    service::user_checksum held;
    while (back->next(page, kExportPage))
        for (const auto& u : page) held.add(u);
    if (!(held == copied) || back->next_id() != next_id)
        throw std::runtime_error("the copy is committed, but the check failed: copied " +
                                 std::to_string(copied.count()) + " users (checksum " + copied.hex() + ", next id " +
                                 std::to_string(next_id) + "), the target holds " + std::to_string(held.count()) +
                                 " (checksum " + held.hex() + ", next id " + std::to_string(back->next_id()) + ")");
    return {held.count(), next_id, held.hex()};
}

}  // namespace userapi::app
