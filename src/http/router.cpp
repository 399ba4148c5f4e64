#include "userapi/http/router.hpp"

#include <charconv>

namespace userapi::http {
namespace {

bool under(std::string_view path, std::string_view base) {
    return path == base ||
           (path.size() > base.size() && path.substr(0, base.size()) == base && path[base.size()] == '/');
}

}  // namespace

route_match match_route(std::string_view target) {
    // absolute-form ("http://host/users/1", RFC 9112 section 3.2.2): only the path matters.
    for (std::string_view scheme : {"http://", "https://"}) {
        if (target.substr(0, scheme.size()) == scheme) {
            const auto slash = target.find('/', scheme.size());
            target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
        }
    }
    const auto path = target.substr(0, target.find('?'));
    route_match m;
    if (path == "/users") {
        m.which = route::users;
    } else if (path.substr(0, 7) == "/users/") {
        m.which = route::user;  // everything after the slash is the id, valid or not
        m.id = path.substr(7);
    } else if (path == "/cache") {
        m.which = route::cache;
    } else if (path == "/cache-status") {
        m.which = route::cache_status;
    } else if (path == "/healthz") {
        m.which = route::healthz;
    } else if (path == "/readyz") {
        m.which = route::readyz;
    } else if (path == "/metrics") {
        m.which = route::metrics;
    }
    m.limited = under(path, "/users") || under(path, "/cache") || under(path, "/cache-status");
    return m;
}

std::optional<std::int64_t> parse_user_id(std::string_view text) {
    if (text.empty() || text.size() > 19 || text[0] < '1' || text[0] > '9') return std::nullopt;
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return id;
}

std::string_view allowed_methods(route r) {
    switch (r) {
        case route::users:
            return "GET, HEAD, POST";
        case route::user:
            return "GET, HEAD, PATCH, DELETE";
        case route::cache:
            return "DELETE";
        case route::cache_status:
        case route::healthz:
        case route::readyz:
        case route::metrics:
            return "GET, HEAD";
        case route::none:
            break;
    }
    return "";
}

std::string_view route_pattern(route r) {
    switch (r) {
        case route::user:
            return "/users/{id}";
        case route::users:
            return "/users";
        case route::cache:
            return "/cache";
        case route::cache_status:
            return "/cache-status";
        case route::healthz:
            return "/healthz";
        case route::readyz:
            return "/readyz";
        case route::metrics:
            return "/metrics";
        case route::none:
            break;
    }
    return "unmatched";
}

}  // namespace userapi::http
