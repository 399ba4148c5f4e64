#include "userapi/core/client_resolver.hpp"

#include <algorithm>

namespace userapi::core {

bool client_resolver::is_trusted(const ip_address& a) const {
    return std::any_of(trusted_.begin(), trusted_.end(), [&](const cidr& c) { return c.contains(a); });
}

ip_address client_resolver::resolve(const ip_address& peer, std::string_view forwarded_for) const {
    ip_address client = peer;
    if (trusted_.empty() || !is_trusted(peer)) return client_key(client, v6_prefix_);
    // Walk from the right: each trusted hop vouches for the address to its left. Stop at the
    // first address no trusted proxy added; an unreadable entry ends the walk at the last
    // address we could trust.
    std::string_view rest = forwarded_for;
    while (!rest.empty()) {
        const auto comma = rest.rfind(',');
        const auto entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
        const auto addr = parse_ip(entry);
        if (!addr) break;
        client = *addr;
        if (!is_trusted(client)) break;
    }
    return client_key(client, v6_prefix_);
}

}  // namespace userapi::core
