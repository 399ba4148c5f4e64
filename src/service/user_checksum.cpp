#include "userapi/service/user_checksum.hpp"

#include <cstdio>

namespace userapi::service {

void user_checksum::mix(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
        hash_ ^= p[i];
        hash_ *= 0x100000001b3ULL;  // the FNV prime
    }
}

// Eight bytes, least significant first, whatever the machine's byte order.
void user_checksum::mix_number(std::uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    mix(b, sizeof b);
}

void user_checksum::add(const user& u) {
    mix_number(static_cast<std::uint64_t>(u.id));
    mix_number(static_cast<std::uint64_t>(u.version));
    mix_number(u.name.size());
    mix(u.name.data(), u.name.size());
    mix_number(u.email.size());
    mix(u.email.data(), u.email.size());
    ++count_;
}

std::string user_checksum::hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash_));
    return buf;
}

}  // namespace userapi::service
