// The rules a POST /users body and a PATCH /users/{id} body follow (contract sections 2
// and 6.3). Pure: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "userapi/service/user.hpp"

namespace userapi::service {

inline constexpr std::size_t kMaxNameChars = 100;  // Unicode code points
inline constexpr std::size_t kMaxEmailChars = 254;

struct invalid_user {
    std::string detail;  // names the offending field, for the client
};

// A JSON object with exactly the string members "name" and "email", valid UTF-8.
std::variant<new_user, invalid_user> parse_new_user(std::string_view body);

// A JSON Merge Patch (RFC 7396) of a user: an object with name, email or both, each valid as
// in parse_new_user; null for either (both are required), an empty object, id, version or any
// other member is refused, naming it.
std::variant<user_patch, invalid_user> parse_user_patch(std::string_view body);

// "" when `name` (valid UTF-8) is acceptable: at most 100 code points, no control or
// bidirectional control characters, at least one visible character. Else why not.
std::string name_problem(std::string_view name);

// "" when `value` is acceptable as the user's `field` ("name" or "email") in POST /users and
// PATCH; else why not, naming the field. The import of an export (section 10) checks with it too.
std::string field_problem(std::string_view field, const std::string& value);

// local@domain.tld, ASCII, at most 254 characters.
bool is_valid_email(std::string_view email);

// Code points in valid UTF-8 text.
std::size_t utf8_length(std::string_view text);

}  // namespace userapi::service
