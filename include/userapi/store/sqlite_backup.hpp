// A consistent copy of a SQLite store while a server may be writing to it, with SQLite's online
// backup API (sqlite3_backup_init/step/finish), a number of pages per step.
//
// In WAL mode (every userapi store's) the copy holds one read transaction on the source from
// the first step to the last: in WAL mode a reader never blocks a writer, and the copy is of
// that one snapshot, so the server's commits neither wait for it nor make it start over. The
// pause between steps leaves the disk to the server. In another journal mode each step takes
// the lock afresh, the pause lets writers in, and a write restarts the copy (SQLite's rule).
//
// The copy goes to TO.partial, is checked (PRAGMA quick_check) and only then renamed to TO, so
// TO never holds half a copy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace userapi::store {

struct backup_result {
    std::int64_t pages = 0;  // of the copy
    std::int64_t users = 0;  // in the copy
};

// Called after each step with the pages copied and the pages in all.
using backup_progress = std::function<void(std::int64_t copied, std::int64_t total)>;

// Throws transfer_refused (FROM is not a userapi SQLite store, TO exists) or
// service::storage_error (the copy failed; TO is then not created).
backup_result backup_sqlite(const std::string& from, const std::string& to, const backup_progress& progress,
                            int pages_per_step = 1000, std::chrono::milliseconds pause = std::chrono::milliseconds(2));

}  // namespace userapi::store
