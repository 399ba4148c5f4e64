#include "userapi/store/sqlite_backup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "sqlite_connection.hpp"
#include "userapi/service/user_repository.hpp"
#include "userapi/store/user_transfer.hpp"

namespace userapi::store {
namespace {

// The rename is durable once the folder's entry is on disk.
void sync_folder(const std::filesystem::path& file) {
    const auto dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

void remove_copy(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
}

// Copies every page of `src` into the file `dst_path`.
std::int64_t copy_pages(sqlite_connection& src, const std::string& dst_path, const backup_progress& progress,
                        int pages_per_step, std::chrono::milliseconds pause) {
    sqlite_connection dst(dst_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    dst.exec("PRAGMA synchronous = FULL");
    sqlite3_backup* b = sqlite3_backup_init(dst.get(), "main", src.get(), "main");
    if (!b) dst.fail("cannot start the backup");
    int rc;
    int busy = 0;
    while ((rc = sqlite3_backup_step(b, pages_per_step)) == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        const int total = sqlite3_backup_pagecount(b);
        if (progress) progress(total - sqlite3_backup_remaining(b), total);
        // Locked steps (a writer in a non-WAL file) retry for a while, then give up.
        busy = rc == SQLITE_OK ? 0 : busy + 1;
        if (busy > 5000) break;
        std::this_thread::sleep_for(rc == SQLITE_OK ? pause : std::chrono::milliseconds(10));
    }
    const std::int64_t pages = sqlite3_backup_pagecount(b);
    if (progress && rc == SQLITE_DONE) progress(pages, pages);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) dst.fail("backup failed");
    return pages;
}

}  // namespace

backup_result backup_sqlite(const std::string& from, const std::string& to, const backup_progress& progress,
                            int pages_per_step, std::chrono::milliseconds pause) {
    require_sqlite_store(from);
    std::error_code ec;
    if (std::filesystem::exists(to, ec))
        throw transfer_refused(to + " already exists: a backup never overwrites a file (remove it first)");
    const std::string partial = to + ".partial";
    remove_copy(partial);  // left by a copy that was killed
    backup_result out;
    try {
        sqlite_connection src(from, SQLITE_OPEN_READWRITE);
        auto mode = src.prepare("PRAGMA journal_mode");
        const bool wal = sqlite3_step(mode.get()) == SQLITE_ROW &&
                         std::string_view(reinterpret_cast<const char*>(sqlite3_column_text(mode.get(), 0))) == "wal";
        mode.reset();
        if (wal) {
            src.exec("BEGIN");
            src.query_int("SELECT count(*) FROM sqlite_master");  // the read transaction, and so the snapshot, starts
        }
        out.pages = copy_pages(src, partial, progress, pages_per_step, pause);
        if (wal) src.exec("COMMIT");
        {
            sqlite_connection copy(partial, SQLITE_OPEN_READWRITE);
            auto check = copy.prepare("PRAGMA quick_check");
            const int rc = sqlite3_step(check.get());
            const auto* verdict =
                rc == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(check.get(), 0)) : nullptr;
            if (!verdict || std::string_view(verdict) != "ok")
                throw service::storage_error(partial +
                                             ": the copy fails SQLite's check: " + (verdict ? verdict : "no answer"));
            check.reset();
            out.users = copy.query_int("SELECT count(*) FROM users").value_or(0);
        }
        std::filesystem::rename(partial, to);
        sync_folder(to);
    } catch (...) {
        remove_copy(partial);
        throw;
    }
    return out;
}

}  // namespace userapi::store
