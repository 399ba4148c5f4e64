// Where a Redis server is: redis://HOST[:PORT][/DB].
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace userapi::core {

struct redis_target {
    std::string host;
    int port = 6379;
    int db = 0;
};

// redis://HOST[:PORT][/DB] (an IPv6 host in brackets); nullopt when it is not one.
std::optional<redis_target> parse_redis_uri(std::string_view uri);

}  // namespace userapi::core
