#include "userapi/store/notification.hpp"

#include <charconv>
#include <cstdlib>
#include <string>
#include <vector>

namespace userapi::store {
namespace {

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
        const auto space = s.find(' ');
        if (space != 0) out.push_back(s.substr(0, space));
        if (space == std::string_view::npos) break;
        s.remove_prefix(space + 1);
    }
    return out;
}

std::optional<std::int64_t> whole(std::string_view s) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v < 0) return std::nullopt;
    return v;
}

std::optional<double> seconds(std::string_view s) {
    const std::string text(s);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
    return v;
}

}  // namespace

std::optional<notification> parse_notification(std::string_view payload) {
    const auto w = words(payload);
    if (w.empty() || w.size() > 4 || w.size() == 3) return std::nullopt;
    notification n;
    if (w.size() >= 2) {
        n.committed = seconds(w[1]);
        if (!n.committed) return std::nullopt;
    }
    if (w[0] == "*") {
        if (w.size() > 2) return std::nullopt;
        n.kind = notification::cleared;
        return n;
    }
    const auto id = whole(w[0]);
    if (!id || *id == 0) return std::nullopt;
    n.id = *id;
    if (w.size() <= 2) {
        n.kind = notification::unversioned;
        return n;
    }
    const auto version = whole(w[2]);
    if (!version || *version == 0 || (w[3] != "u" && w[3] != "d")) return std::nullopt;
    n.version = *version;
    n.kind = w[3] == "d" ? notification::deleted : notification::written;
    return n;
}

}  // namespace userapi::store
