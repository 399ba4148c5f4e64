// The API key file (contract 9.3): {"keys":[{"id":..., "sha256":..., "scopes":[...],
// "rate_limit":{"capacity":N,"refill_per_minute":R}}]}. It holds each key's SHA-256, never a
// key; a presented key is hashed and compared with every digest in constant time.
// Immutable once loaded: safe to share between threads.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "userapi/auth/principal.hpp"

namespace userapi::auth {

using sha256_digest = std::array<unsigned char, 32>;

sha256_digest sha256_of(std::string_view data);

class api_key_set {
public:
    // The file's text, or an error naming what is wrong (never a key: the file holds none).
    static std::variant<api_key_set, std::string> parse(std::string_view json_text);

    // The principal of `key`, or null. Every digest is compared, whatever matches.
    std::shared_ptr<const principal> find(std::string_view key) const;
    std::size_t size() const { return entries_.size(); }

private:
    struct entry {
        sha256_digest digest;
        std::shared_ptr<const principal> who;
    };
    std::vector<entry> entries_;
};

// A fresh key (32 random bytes, base64url: 43 characters) and the file entry that admits it
// with `scopes`. Throws std::runtime_error when the system has no randomness to give.
struct new_key {
    std::string key;
    std::string entry_json;
};
new_key make_api_key(std::string_view id, const std::vector<std::string>& scopes);

// An identity name an operator may give a key: 1-64 of [A-Za-z0-9._-].
bool valid_key_id(std::string_view id);

}  // namespace userapi::auth
