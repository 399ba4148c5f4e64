// A checksum over users taken in ascending id order: FNV-1a (64 bits) over each user's id,
// version, name and email, lengths included, so it is the same whichever store the users were
// read from. It finds copying errors, not forgeries: it is not a cryptographic hash.
// Not thread-safe: one reader feeds it.
#pragma once

#include <cstdint>
#include <string>

#include "userapi/service/user.hpp"

namespace userapi::service {

class user_checksum {
public:
    void add(const user& u);
    std::int64_t count() const { return count_; }
    std::uint64_t value() const { return hash_; }
    std::string hex() const;  // 16 lowercase hex digits
    friend bool operator==(const user_checksum&, const user_checksum&) = default;

private:
    void mix(const void* data, std::size_t size);
    void mix_number(std::uint64_t v);

    std::uint64_t hash_ = 0xcbf29ce484222325ULL;  // the FNV-1a offset basis
    std::int64_t count_ = 0;
};

}  // namespace userapi::service
