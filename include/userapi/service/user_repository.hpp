// Where users are stored. Implementations are not thread-safe: each is used by one thread at
// a time (the DB queue's). Storage failures throw storage_error; expected outcomes (not found,
// email taken, precondition failed) are values.
//
// Idempotency-Key (contract 8.2): the *_once writes record the key, the request's fingerprint
// and the write's outcome in the same transaction as the write. A key recorded less than
// `ttl` ago is not written again: its recorded outcome comes back (replayed), or `mismatch`
// when the fingerprint differs, or `in_progress` while another transaction holds the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "userapi/service/user.hpp"

namespace userapi::service {

class storage_error : public std::runtime_error {
public:
    // `maybe_performed`: the operation may have reached the store (the connection broke after
    // the statement was sent, before its result came back), so its outcome is unknown. False
    // when it surely never ran: no connection, refused before sending.
    explicit storage_error(const std::string& what, bool maybe_performed = false)
        : std::runtime_error(what), maybe_performed_(maybe_performed) {}
    bool maybe_performed() const { return maybe_performed_; }

private:
    bool maybe_performed_;
};

enum class write_status { done, not_found, email_taken, precondition_failed };

// An Idempotency-Key as the store keeps it.
struct idempotency_key {
    std::string scope;        // whose key: "" = the server's; with authentication, the identity's
    std::string key;          // 1-255 visible ASCII characters
    std::string fingerprint;  // of the request: method, path, the body's bytes, If-Match
    std::chrono::seconds ttl{86400};
};

enum class key_outcome {
    fresh,        // the write ran now (or there was no key)
    replayed,     // recorded before: status and stored are the recorded outcome, nothing written
    mismatch,     // recorded before with another fingerprint: nothing written
    in_progress,  // another request with this key is running: nothing written
};

struct write_result {
    write_status status = write_status::done;
    user stored;  // the user as stored, when done; for a delete, its id and the version deleted
    key_outcome key = key_outcome::fresh;
};

class user_repository {
public:
    virtual ~user_repository() = default;
    virtual std::optional<user> find(std::int64_t id) = 0;
    // Assigns the next id (increasing, never reused) and stores the user at version 1.
    // done | email_taken (compared case-insensitively).
    virtual write_result create(const new_user& u) = 0;
    // Applies `patch` when `pre` matches the stored version, in one atomic step; the version
    // grows only when a field changes. done | not_found | email_taken | precondition_failed.
    virtual write_result update(std::int64_t id, const user_patch& patch, const precondition& pre) = 0;
    // done (stored: the id and the version deleted) | not_found | precondition_failed, the
    // check and the delete one atomic step.
    virtual write_result remove(std::int64_t id, const precondition& pre) = 0;
    // The same writes with an Idempotency-Key, see above.
    virtual write_result create_once(const new_user& u, const idempotency_key& k) = 0;
    virtual write_result update_once(std::int64_t id, const user_patch& patch, const precondition& pre,
                                     const idempotency_key& k) = 0;
    virtual write_result remove_once(std::int64_t id, const precondition& pre, const idempotency_key& k) = 0;
    // Forgets the keys recorded more than `ttl` ago; returns how many.
    virtual std::size_t purge_keys(std::chrono::seconds ttl) = 0;
    // Users with an id above `after`, in ascending id order, at most `limit`.
    virtual std::vector<user> list(std::int64_t after, std::size_t limit) = 0;
    virtual std::size_t size() = 0;
    // Creates users 1..n ("User N", userN@example.com); stores may batch it.
    virtual void seed(std::int64_t n);
    // Tells the other instances sharing this store to empty their caches. A store only one
    // instance uses has nobody to tell.
    virtual void announce_clear() {}
    // True when other instances share this store (and so need announcements).
    virtual bool shared() const { return false; }
};

// Seeds users 1..n when the store is empty; a store that holds users is left as it is.
void seed_users(user_repository& repo, std::int64_t n);

}  // namespace userapi::service
