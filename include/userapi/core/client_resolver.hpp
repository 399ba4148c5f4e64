// Who the client of a request is, for rate limiting: the TCP peer, unless the peer is a
// trusted proxy; then the right-most X-Forwarded-For address that is not itself trusted.
// Immutable after construction: safe to share between threads.
#pragma once

#include <string_view>
#include <vector>

#include "userapi/core/ip_address.hpp"

namespace userapi::core {

class client_resolver {
public:
    client_resolver(std::vector<cidr> trusted, int v6_prefix) : trusted_(std::move(trusted)), v6_prefix_(v6_prefix) {}

    bool is_trusted(const ip_address& a) const;

    // `forwarded_for`: every X-Forwarded-For value of the request joined with ",".
    // Returns the client's rate-limit key (IPv6 masked to the configured prefix).
    ip_address resolve(const ip_address& peer, std::string_view forwarded_for) const;

private:
    std::vector<cidr> trusted_;
    int v6_prefix_;
};

}  // namespace userapi::core
