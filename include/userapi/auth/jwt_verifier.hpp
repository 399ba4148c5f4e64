// Verifies a JWT (RFC 7519) in JWS compact serialization the way RFC 8725 advises: the
// algorithm must be one of RS256, PS256, ES256, EdDSA and one the selected key may verify
// (never "none", never HMAC, never the token's word against the key's); `kid` selects the key,
// and a token without one is accepted only when exactly one key of the set could verify it.
// The signature is checked with OpenSSL before any claim is believed; then exp (required),
// nbf and iat (with leeway), iss (exact), aud (a string, or an array holding ours), sub
// (required), and the scopes from `scope` (space-separated) or `scp` (an array, or a string).
// Pure: the time is an argument; nothing is logged. Safe to call from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "userapi/auth/jwk_set.hpp"
#include "userapi/auth/principal.hpp"

namespace userapi::auth {

struct jwt_rules {
    std::string issuer;
    std::string audience;
    std::int64_t leeway_s = 60;
};

enum class jwt_failure {
    none,
    malformed,        // not a JWS compact serialization of JSON objects
    unsupported_alg,  // none, HS*, or anything but the four
    unknown_kid,      // no key of the set has the token's kid (a refresh may find it)
    no_key,           // no key may verify this algorithm (or kid-less and ambiguous)
    bad_signature,
    expired,
    not_yet_valid,
    issued_in_future,
    wrong_issuer,
    wrong_audience,
    bad_claims,  // exp or sub missing, a claim of the wrong type
};

struct jwt_result {
    std::shared_ptr<principal> who;  // set when the token is valid
    double expires_at = 0;           // its exp (seconds since the epoch)
    jwt_failure failure = jwt_failure::none;
    const char* description = "";  // which rule failed, in words; never any part of the token
};

jwt_result verify_jwt(std::string_view token, const jwk_set& keys, const jwt_rules& rules, double now_seconds);

// True when `token` has the shape of a JWS compact serialization (three dot-separated parts).
bool looks_like_jwt(std::string_view token);

}  // namespace userapi::auth
