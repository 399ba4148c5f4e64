// The user record and its JSON form.
#pragma once

#include <cstdint>
#include <string>

namespace userapi::service {

struct user {
    std::int64_t id = 0;
    std::string name;
    std::string email;
    friend bool operator==(const user&, const user&) = default;
};

// A user as a client asked for it to be created: validated, not yet stored.
struct new_user {
    std::string name;
    std::string email;
};

// {"id":1,"name":"…","email":"…"}: the exact bytes every response about the user carries.
std::string to_json(const user& u);

}  // namespace userapi::service
