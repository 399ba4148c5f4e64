#include "userapi/core/ip_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace userapi::core {
namespace {

constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

bool ip_address::is_v4() const { return std::memcmp(bytes.data(), kMappedPrefix.data(), 12) == 0; }

std::string ip_address::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4())
        inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
    else
        inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

ip_address ip_address::masked(int bits) const {
    ip_address out = *this;
    for (int i = 0; i < 16; ++i) {
        const int keep = bits - i * 8;
        if (keep >= 8) continue;
        out.bytes[i] &= keep <= 0 ? 0 : static_cast<std::uint8_t>(0xff << (8 - keep));
    }
    return out;
}

namespace {

// MurmurHash3's finalizer: every input bit affects every output bit, so any slice of the
// hash (the low bits a shard index takes) depends on the whole address.
std::uint64_t mix(std::uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

std::size_t ip_address_hash::operator()(const ip_address& a) const noexcept {
    std::uint64_t hi, lo;
    std::memcpy(&hi, a.bytes.data(), 8);
    std::memcpy(&lo, a.bytes.data() + 8, 8);
    return static_cast<std::size_t>(mix(lo ^ mix(hi)));
}

std::optional<ip_address> parse_ip(std::string_view text) {
    text = trim(text);
    if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN] = {};
    std::memcpy(buf, text.data(), text.size());
    ip_address a;
    if (inet_pton(AF_INET, buf, a.bytes.data() + 12) == 1) {
        std::memcpy(a.bytes.data(), kMappedPrefix.data(), 12);
        return a;
    }
    if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) return a;
    return std::nullopt;
}

std::optional<cidr> parse_cidr(std::string_view text) {
    text = trim(text);
    const auto slash = text.find('/');
    const auto addr = parse_ip(text.substr(0, slash));
    if (!addr) return std::nullopt;
    const int family_bits = addr->is_v4() ? 32 : 128;
    int bits = family_bits;
    if (slash != std::string_view::npos) {
        const auto p = text.substr(slash + 1);
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), bits);
        if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || bits < 0 || bits > family_bits)
            return std::nullopt;
    }
    const int prefix = addr->is_v4() ? 96 + bits : bits;
    return cidr{addr->masked(prefix), prefix};
}

ip_address client_key(const ip_address& a, int v6_prefix) { return a.is_v4() ? a : a.masked(v6_prefix); }

}  // namespace userapi::core
