#include "userapi/core/redact.hpp"

namespace userapi::core {
namespace {

// Replaces the value after every "password =" (a keyword, blanks allowed around '=', or a
// query parameter) up to the next blank, '&' or end; a quoted value up to its closing quote.
void redact_keywords(std::string& s) {
    constexpr std::string_view key = "password";
    for (auto p = s.find(key); p != std::string::npos; p = s.find(key, p + 1)) {
        auto start = p + key.size();
        while (start < s.size() && s[start] == ' ') ++start;
        if (start >= s.size() || s[start] != '=') continue;
        ++start;
        while (start < s.size() && s[start] == ' ') ++start;
        auto end = start;
        if (end < s.size() && s[end] == '\'') {
            end = s.find('\'', end + 1);
            end = end == std::string::npos ? s.size() : end + 1;
        } else {
            while (end < s.size() && s[end] != ' ' && s[end] != '&' && s[end] != '\t') ++end;
        }
        s.replace(start, end - start, "***");
    }
}

}  // namespace

std::string redact_password(const std::string& conninfo) {
    std::string out = conninfo;
    // scheme://user:password@host...: the part between the first ':' after the scheme and '@'.
    if (const auto scheme = out.find("://"); scheme != std::string::npos) {
        const auto start = scheme + 3;
        const auto at = out.find('@', start);
        const auto slash = out.find('/', start);
        const auto colon = out.find(':', start);
        if (at != std::string::npos && (slash == std::string::npos || at < slash) && colon != std::string::npos &&
            colon < at)
            out.replace(colon + 1, at - colon - 1, "***");
    }
    redact_keywords(out);
    return out;
}

}  // namespace userapi::core
