// The credentials of one Authorization field value, read as RFC 6750 section 2.1 says: only
// "Bearer" 1*SP b64token (the scheme in any case). Pure: no allocation, no I/O.
#pragma once

#include <string_view>

namespace userapi::auth {

struct bearer_credentials {
    enum kind_type {
        bearer,        // `token` holds it
        empty_bearer,  // "Bearer" and nothing after it
        other_scheme,  // Basic, Digest, ...
        malformed,     // Bearer followed by something that is not a b64token
    } kind = malformed;
    std::string_view token;  // a view into the value
};

// `check_token` false: the token's characters are not looked at (`bearer` whatever they are),
// for a caller that first asks whether it knows the token (a known one was checked then).
bearer_credentials parse_authorization(std::string_view value, bool check_token = true);

// RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
bool is_b64token(std::string_view token);

}  // namespace userapi::auth
