// Who a request is, once its credentials were verified: the identity its bucket and its log
// lines are named after, what it may do, and an API key's own rate limit.
#pragma once

#include <optional>
#include <string>

#include "userapi/auth/scopes.hpp"
#include "userapi/core/token_bucket.hpp"

namespace userapi::auth {

struct principal {
    std::string identity;  // "key:ID", "jwt:ISS:SUB" or "admin-token"
    scope_set scopes;
    std::optional<core::bucket_policy> rate_limit;  // an API key's own; else the identities' default
};

}  // namespace userapi::auth
