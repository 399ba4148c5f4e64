// Which resource a request target names, and which methods it serves. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace userapi::http {

enum class route { user, users, cache, cache_status, healthz, readyz, metrics, none };
inline constexpr int kRouteCount = 8;

struct route_match {
    route which = route::none;
    std::string_view id;   // the raw {id} of /users/{id}
    bool limited = false;  // costs a rate-limit token: /users…, /cache…, /cache-status…
};

// `target` may carry a query string; it is ignored.
route_match match_route(std::string_view target);

// `^[1-9][0-9]*$` up to 2^63-1, else nullopt.
std::optional<std::int64_t> parse_user_id(std::string_view text);

// The Allow header of a route ("GET, HEAD").
std::string_view allowed_methods(route r);

// The route's pattern for metrics and logs ("/users/{id}"); never the raw path.
std::string_view route_pattern(route r);

}  // namespace userapi::http
