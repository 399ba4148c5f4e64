// Where users are stored. Implementations are not thread-safe: the DB queue's single
// thread is the only caller once the server runs. Storage failures throw storage_error.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>

#include "userapi/service/user.hpp"

namespace userapi::service {

class storage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct create_outcome {
    bool created = false;  // false: the email is taken (compared case-insensitively)
    user stored;           // the user as stored, when created
};

class user_repository {
public:
    virtual ~user_repository() = default;
    virtual std::optional<user> find(std::int64_t id) = 0;
    // Assigns the next id (increasing, never reused) and stores the user.
    virtual create_outcome create(const new_user& u) = 0;
    virtual std::size_t size() = 0;
    // Creates users 1..n ("User N", userN@example.com); stores may batch it.
    virtual void seed(std::int64_t n);
};

// Seeds users 1..n when the store is empty; a store that holds users is left as it is.
void seed_users(user_repository& repo, std::int64_t n);

}  // namespace userapi::service
