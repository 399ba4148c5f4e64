// Entity tags of users and the conditional request fields that compare them (RFC 9110 §8.8.3,
// §13.1.1, §13.1.2). An ETag is strong and names the user and its version: "<id>-<version>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "userapi/service/user.hpp"

namespace userapi::http {

// "\"7-3\"": equal for equal versions on every instance and after restarts.
std::string etag_of(std::int64_t id, std::int64_t version);

// If-None-Match against the current ETag, weak comparison: true when it lists that tag (W/ or
// not) or is "*" (an existing representation). nullopt: the field is malformed.
std::optional<bool> none_match_hits(std::string_view field, std::string_view current_etag);

// If-Match for user `id` as the precondition the store checks in the same step as its write,
// strong comparison: "*" matches any existing version, a list matches the versions its strong
// tags name for this user; a weak tag or another user's tag matches nothing. nullopt: malformed.
std::optional<service::precondition> if_match_precondition(std::string_view field, std::int64_t id);

}  // namespace userapi::http
