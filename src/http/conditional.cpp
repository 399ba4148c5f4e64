#include "userapi/http/conditional.hpp"

#include <charconv>
#include <vector>

namespace userapi::http {
namespace {

struct entity_tag {
    bool weak = false;
    std::string_view opaque;  // without the quotes
};

void skip_ows(std::string_view& s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

// "*" (returns true in `any`) or 1#entity-tag; false when malformed.
bool parse_tags(std::string_view s, bool& any, std::vector<entity_tag>& tags) {
    skip_ows(s);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    any = s == "*";
    if (any) return true;
    for (;;) {
        skip_ows(s);
        if (s.empty()) return !tags.empty();
        if (s.front() == ',') {  // empty list elements are allowed (RFC 9110 §5.6.1)
            s.remove_prefix(1);
            continue;
        }
        entity_tag t;
        if (s.substr(0, 2) == "W/") {
            t.weak = true;
            s.remove_prefix(2);
        }
        if (s.empty() || s.front() != '"') return false;
        const auto close = s.find('"', 1);
        if (close == std::string_view::npos) return false;
        t.opaque = s.substr(1, close - 1);
        for (unsigned char c : t.opaque)
            if (c < 0x21 || c == 0x7f) return false;  // etagc excludes blanks and controls
        tags.push_back(t);
        s.remove_prefix(close + 1);
        skip_ows(s);
        if (!s.empty() && s.front() != ',') return false;
    }
}

std::optional<std::int64_t> number(std::string_view s) {
    std::int64_t v = 0;
    if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v < 0) return std::nullopt;
    return v;
}

}  // namespace

std::string etag_of(std::int64_t id, std::int64_t version) {
    return "\"" + std::to_string(id) + "-" + std::to_string(version) + "\"";
}

std::optional<bool> none_match_hits(std::string_view field, std::string_view current_etag) {
    bool any = false;
    std::vector<entity_tag> tags;
    if (!parse_tags(field, any, tags)) return std::nullopt;
    if (any) return true;
    const auto current = current_etag.substr(1, current_etag.size() - 2);
    for (const auto& t : tags)
        if (t.opaque == current) return true;  // weak comparison: W/ does not matter
    return false;
}

std::optional<service::precondition> if_match_precondition(std::string_view field, std::int64_t id) {
    bool any = false;
    std::vector<entity_tag> tags;
    if (!parse_tags(field, any, tags)) return std::nullopt;
    service::precondition pre;
    pre.any = any;
    for (const auto& t : tags) {
        if (t.weak) continue;  // strong comparison: a weak tag never matches
        const auto dash = t.opaque.find('-');
        if (dash == std::string_view::npos) continue;
        const auto tag_id = number(t.opaque.substr(0, dash));
        const auto version = number(t.opaque.substr(dash + 1));
        if (tag_id == id && version) pre.versions.push_back(*version);
    }
    return pre;
}

}  // namespace userapi::http
