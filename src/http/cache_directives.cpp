#include "userapi/http/cache_directives.hpp"

#include <string>

#include <boost/beast/core/string.hpp>

namespace userapi::http {
namespace {

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// delta-seconds, token or quoted-string form (recipients accept both, RFC 9111 §5.2), is 0.
bool zero_seconds(std::string_view v) {
    v = trimmed(v);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.empty()) return false;
    for (char c : v)
        if (c != '0') return false;
    return true;
}

// Whether a comma-separated list of directives names `no-cache` (or max-age=0 when `max_age`).
bool names_no_cache(std::string_view list, bool max_age) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        const auto item = trimmed(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        const auto eq = item.find('=');
        const auto name = trimmed(item.substr(0, eq));
        if (boost::beast::iequals(name, "no-cache")) return true;
        if (max_age && eq != std::string_view::npos && boost::beast::iequals(name, "max-age") &&
            zero_seconds(item.substr(eq + 1)))
            return true;
    }
    return false;
}

}  // namespace

bool asks_for_store(const std::optional<std::string_view>& cache_control,
                    const std::optional<std::string_view>& pragma) {
    if (cache_control) return names_no_cache(*cache_control, true);
    return pragma && names_no_cache(*pragma, false);
}

bool asks_for_store(const request& req) {
    const bool cc = req.find(bhttp::field::cache_control) != req.end();
    if (!cc && req.find(bhttp::field::pragma) == req.end()) return false;  // the common case
    std::optional<std::string> joined_cc, joined_pragma;
    if (cc)
        joined_cc = joined_field(req, "Cache-Control");
    else
        joined_pragma = joined_field(req, "Pragma");
    return asks_for_store(joined_cc ? std::optional<std::string_view>(*joined_cc) : std::nullopt,
                          joined_pragma ? std::optional<std::string_view>(*joined_pragma) : std::nullopt);
}

}  // namespace userapi::http
