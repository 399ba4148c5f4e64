#include "userapi/core/redis_uri.hpp"

#include <charconv>

namespace userapi::core {

std::optional<redis_target> parse_redis_uri(std::string_view uri) {
    constexpr std::string_view scheme = "redis://";
    if (uri.substr(0, scheme.size()) != scheme) return std::nullopt;
    uri.remove_prefix(scheme.size());
    redis_target t;
    const auto slash = uri.find('/');
    auto hostport = uri.substr(0, slash);
    if (slash != std::string_view::npos) {
        const auto db = uri.substr(slash + 1);
        if (!db.empty()) {
            const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), t.db);
            if (ec != std::errc{} || end != db.data() + db.size() || t.db < 0) return std::nullopt;
        }
    }
    if (const auto at = hostport.rfind('@'); at != std::string_view::npos) hostport.remove_prefix(at + 1);
    std::string_view port;
    if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
        const auto close = hostport.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        const auto rest = hostport.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return std::nullopt;
        if (!rest.empty()) port = rest.substr(1);
        hostport = hostport.substr(1, close - 1);
    } else if (const auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
        port = hostport.substr(colon + 1);
        hostport = hostport.substr(0, colon);
    }
    if (!port.empty()) {
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), t.port);
        if (ec != std::errc{} || end != port.data() + port.size() || t.port <= 0 || t.port > 65535) return std::nullopt;
    }
    if (hostport.empty()) return std::nullopt;
    t.host = std::string(hostport);
    return t;
}

}  // namespace userapi::core
