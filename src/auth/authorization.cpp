#include "userapi/auth/authorization.hpp"

#include <array>

namespace userapi::auth {
namespace {

bool blank(char c) { return c == ' ' || c == '\t'; }

// The b64token characters, as a table: a bearer's every character is looked at on every request.
constexpr std::array<bool, 256> make_token68() {
    std::array<bool, 256> t{};
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (unsigned char c : std::string_view("-._~+/")) t[c] = true;
    return t;
}
constexpr auto kToken68 = make_token68();

bool token68_char(char c) { return kToken68[static_cast<unsigned char>(c)]; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

}  // namespace

bool is_b64token(std::string_view token) {
    std::size_t i = 0;
    while (i < token.size() && token68_char(token[i])) ++i;
    if (i == 0) return false;
    while (i < token.size() && token[i] == '=') ++i;
    return i == token.size();
}

bearer_credentials parse_authorization(std::string_view value, bool check_token) {
    while (!value.empty() && blank(value.front())) value.remove_prefix(1);
    while (!value.empty() && blank(value.back())) value.remove_suffix(1);
    std::size_t end = 0;
    while (end < value.size() && !blank(value[end])) ++end;
    if (!iequals(value.substr(0, end), "Bearer")) return {bearer_credentials::other_scheme, {}};
    auto rest = value.substr(end);
    while (!rest.empty() && blank(rest.front())) rest.remove_prefix(1);
    if (rest.empty()) return {bearer_credentials::empty_bearer, {}};
    if (check_token && !is_b64token(rest)) return {bearer_credentials::malformed, {}};
    return {bearer_credentials::bearer, rest};
}

}  // namespace userapi::auth
