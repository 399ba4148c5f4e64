#include "userapi/http/body_rules.hpp"

#include <boost/beast/core/string.hpp>

namespace userapi::http {
namespace {

using boost::beast::iequals;

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void skip_ows(std::string_view& s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

std::string_view take_token(std::string_view& s) {
    std::size_t n = 0;
    while (n < s.size() && is_tchar(s[n])) ++n;
    const auto t = s.substr(0, n);
    s.remove_prefix(n);
    return t;
}

// A quoted-string's content (escapes kept as they are: a charset never needs one); false
// when it does not close.
bool take_quoted(std::string_view& s, std::string_view& out) {
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (s[i] == '\\') {
            ++i;
        } else if (s[i] == '"') {
            out = s.substr(1, i - 1);
            s.remove_prefix(i + 1);
            return true;
        }
    }
    return false;
}

}  // namespace

std::string media_type_problem(std::string_view v, std::initializer_list<std::string_view> accepted) {
    std::string names;
    for (auto a : accepted) names += (names.empty() ? "" : " or ") + std::string(a);
    const std::string expected = "Content-Type must be " + names;
    skip_ows(v);
    const auto type = take_token(v);
    if (type.empty() || v.empty() || v.front() != '/') return expected;
    v.remove_prefix(1);
    const auto subtype = take_token(v);
    if (subtype.empty()) return expected;
    const std::string_view media(type.data(), static_cast<std::size_t>(subtype.data() + subtype.size() - type.data()));
    bool known = false;
    for (auto a : accepted) known = known || iequals(media, a);
    if (!known) return expected;
    for (;;) {
        skip_ows(v);
        if (v.empty()) return {};
        if (v.front() != ';') return "Content-Type is malformed";
        v.remove_prefix(1);
        skip_ows(v);
        if (v.empty()) return {};  // a trailing ";" is tolerated
        const auto name = take_token(v);
        if (name.empty() || v.empty() || v.front() != '=') return "Content-Type is malformed";
        v.remove_prefix(1);
        std::string_view value;
        if (!v.empty() && v.front() == '"') {
            if (!take_quoted(v, value)) return "Content-Type is malformed";
        } else {
            value = take_token(v);
            if (value.empty()) return "Content-Type is malformed";
        }
        if (iequals(name, "charset") && !iequals(value, "utf-8"))
            return "only charset=utf-8 is supported, got charset=" + std::string(value.substr(0, 32));
    }
}

refusal body_problem(const request& req, std::initializer_list<std::string_view> accepted) {
    const auto n = req.count(bhttp::field::content_type);
    if (n > 1) return {400, "more than one Content-Type field"};
    if (n == 0) return {415, media_type_problem("", accepted)};
    if (auto p = media_type_problem(req[bhttp::field::content_type], accepted); !p.empty()) return {415, p};
    const auto [first, last] = req.equal_range(bhttp::field::content_encoding);
    for (auto it = first; it != last; ++it) {
        std::string_view codings = it->value();
        // "identity" is no coding at all; anything else would need decoding, and none is done.
        for (std::size_t start = 0; start <= codings.size();) {
            auto comma = codings.find(',', start);
            if (comma == std::string_view::npos) comma = codings.size();
            auto c = codings.substr(start, comma - start);
            skip_ows(c);
            while (!c.empty() && (c.back() == ' ' || c.back() == '\t')) c.remove_suffix(1);
            if (!c.empty() && !iequals(c, "identity"))
                return {415, "Content-Encoding " + std::string(c.substr(0, 32)) +
                                 " is not supported: send the body without a content coding"};
            start = comma + 1;
        }
    }
    return {};
}

}  // namespace userapi::http
