#include "userapi/auth/scopes.hpp"

namespace userapi::auth {
namespace {

constexpr scope kAll[] = {scope::users_read, scope::users_write, scope::admin};

template <class F>
void for_each_word(std::string_view text, F&& f) {
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        const auto start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
        if (i > start) f(text.substr(start, i - start));
    }
}

}  // namespace

std::string_view scope_name(scope s) {
    switch (s) {
        case scope::users_read:
            return "users:read";
        case scope::users_write:
            return "users:write";
        case scope::admin:
            return "admin";
    }
    return "";
}

std::optional<scope> parse_scope(std::string_view name) {
    for (auto s : kAll)
        if (scope_name(s) == name) return s;
    return std::nullopt;
}

std::string scope_set::to_string() const {
    std::string out;
    for (auto s : kAll) {
        if (!has(s)) continue;
        if (!out.empty()) out += ' ';
        out += scope_name(s);
    }
    return out;
}

std::optional<scope_set> parse_scope_list(const std::vector<std::string>& words, std::string* bad) {
    scope_set set;
    bool ok = true;
    for (const auto& w : words)
        for_each_word(w, [&](std::string_view word) {
            if (!ok) return;
            if (auto s = parse_scope(word)) {
                set.add(*s);
            } else {
                ok = false;
                if (bad) *bad = std::string(word);
            }
        });
    if (!ok) return std::nullopt;
    return set;
}

void add_known_scopes(std::string_view words, scope_set& into) {
    for_each_word(words, [&](std::string_view word) {
        if (auto s = parse_scope(word)) into.add(*s);
    });
}

}  // namespace userapi::auth
