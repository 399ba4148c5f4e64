// IP addresses and CIDR ranges without any network library. IPv4 addresses are held in
// their IPv4-mapped IPv6 form (::ffff:a.b.c.d) so one 16-byte type and one prefix test
// serve both families.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace userapi::core {

struct ip_address {
    std::array<std::uint8_t, 16> bytes{};

    bool is_v4() const;
    std::string to_string() const;
    // The first `bits` bits kept, the rest zeroed.
    ip_address masked(int bits) const;
    friend bool operator==(const ip_address&, const ip_address&) = default;
};

struct ip_address_hash {
    std::size_t operator()(const ip_address& a) const noexcept;
};

// "192.0.2.1", "2001:db8::1" or "[2001:db8::1]"; surrounding blanks ignored.
std::optional<ip_address> parse_ip(std::string_view text);

struct cidr {
    ip_address network;  // host bits zero
    int prefix = 128;    // in the 128-bit (mapped) space

    bool contains(const ip_address& a) const { return a.masked(prefix) == network; }
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (a single host).
std::optional<cidr> parse_cidr(std::string_view text);

// The rate-limit key of a client: the address itself for IPv4, its first `v6_prefix` bits
// for IPv6, so rotating addresses inside one allocation stays one client.
ip_address client_key(const ip_address& a, int v6_prefix);

}  // namespace userapi::core
