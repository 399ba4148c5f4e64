// Users in bulk, between stores (contract section 10): a consistent snapshot to read a store
// from while servers keep writing to it, and a loader that fills an empty store all at once.
//
// Both open the store through its repository first (the code the server runs at start), so
// the schema is created or migrated exactly as a server would, and a newer schema is refused;
// the bulk work then runs on a connection of its own.
//
// Not thread-safe: each object is used by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "userapi/service/user.hpp"

namespace userapi::store {

// The store cannot be used for this: it is not there, not a userapi store, or (for a loader)
// not empty. Bad input, unlike service::storage_error (the engine failed).
class transfer_refused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What --data names: a postgresql:// or postgres:// URI, anything else a SQLite path.
bool is_postgres_uri(std::string_view data);

// One state the store really had, read in ascending id order, page by page (never all at once).
class user_snapshot {
public:
    virtual ~user_snapshot() = default;
    // The id the store would assign next: above every id it ever assigned, deleted ones too.
    virtual std::int64_t next_id() const = 0;
    // Users in the snapshot.
    virtual std::int64_t count() const = 0;
    // The next users, at most `max`, into `page` (replacing what it held); false once none are left.
    virtual bool next(std::vector<service::user>& page, std::size_t max) = 0;
};

// An email already held by another user (case-insensitively) in this load.
struct email_conflict {
    std::size_t index = 0;      // in the batch passed to add()
    std::int64_t other_id = 0;  // the user that has it
};

// An empty store (no user, no id ever assigned) taking users inside one transaction: nothing is
// visible to anyone before commit(), and nothing is written unless commit() returns, even if the
// process is killed midway (the engine discards a transaction its connection left open).
class user_loader {
public:
    virtual ~user_loader() = default;  // without commit(): rolled back
    // Users in ascending id order, every id above those added before. On a conflict nothing of
    // this batch is kept and the load cannot be committed.
    virtual std::optional<email_conflict> add(const std::vector<service::user>& batch) = 0;
    // Makes every user visible at once and sets the id the store assigns next (above every id
    // added). Running instances on PostgreSQL are told to empty their caches.
    virtual void commit(std::int64_t next_id) = 0;
    // How many users add() should get at a time for this engine.
    virtual std::size_t batch_size() const = 0;
};

// Throw transfer_refused (no such SQLite file, no userapi schema; the loader: not empty) or
// service::storage_error (cannot open or connect within `connect_timeout`, a newer schema).
std::unique_ptr<user_snapshot> open_snapshot(const std::string& data, std::chrono::milliseconds connect_timeout);
// A SQLite file that does not exist is created, with its folder.
std::unique_ptr<user_loader> open_loader(const std::string& data, std::chrono::milliseconds connect_timeout);

}  // namespace userapi::store
