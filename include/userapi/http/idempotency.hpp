// The Idempotency-Key request field (draft-ietf-httpapi-idempotency-key-header, contract 8.2)
// and the fingerprint of the request it names.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "userapi/http/beast_types.hpp"

namespace userapi::http {

struct key_field {
    bool present = false;
    std::optional<std::string> key;  // when present and valid
};

// The key: 1-255 visible ASCII characters (%x21-7E), or a Structured Field String "..."
// whose content is such a key. Present but anything else (or sent twice): no key.
key_field idempotency_key_of(const request& req);
std::optional<std::string> parse_idempotency_key(std::string_view value);

// SHA-256 (hex) of the request's method, target, If-Match and body bytes: two requests with
// one key are the same request when these are equal.
std::string request_fingerprint(const request& req);

}  // namespace userapi::http
