// The user record, its JSON form, and the shapes of changes to it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace userapi::service {

struct user {
    std::int64_t id = 0;
    std::string name;
    std::string email;
    std::int64_t version = 1;  // 1 when created, +1 on every update that changes something
    friend bool operator==(const user&, const user&) = default;
};

// A user as a client asked for it to be created: validated, not yet stored.
struct new_user {
    std::string name;
    std::string email;
};

// A validated JSON Merge Patch (RFC 7396) of a user: each member present replaces its field.
struct user_patch {
    std::optional<std::string> name;
    std::optional<std::string> email;
};

// If-Match as the store evaluates it, in the same atomic step as the write it guards.
struct precondition {
    bool any = true;                     // no If-Match, or If-Match: * (any existing user)
    std::vector<std::int64_t> versions;  // otherwise the versions it names for this user; none: no match
    bool matches(std::int64_t version) const;
};

// {"id":1,"name":"…","email":"…"}: the exact bytes every response about the user carries.
std::string to_json(const user& u);

}  // namespace userapi::service
