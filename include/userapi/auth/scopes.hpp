// The scopes of contract section 9.2 as a small bit set: what a request may do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace userapi::auth {

enum class scope : std::uint8_t { users_read = 1, users_write = 2, admin = 4 };

class scope_set {
public:
    constexpr scope_set() = default;
    static constexpr scope_set all() { return scope_set(7); }

    constexpr bool has(scope s) const { return (bits_ & static_cast<std::uint8_t>(s)) != 0; }
    constexpr void add(scope s) { bits_ |= static_cast<std::uint8_t>(s); }
    constexpr bool empty() const { return bits_ == 0; }
    friend constexpr bool operator==(scope_set, scope_set) = default;

    // "users:read users:write" in the order of the table.
    std::string to_string() const;

private:
    constexpr explicit scope_set(std::uint8_t b) : bits_(b) {}
    std::uint8_t bits_ = 0;
};

// "users:read", "users:write", "admin".
std::string_view scope_name(scope s);
std::optional<scope> parse_scope(std::string_view name);

// Every word of `words` (each element may hold several, separated by blanks) must be a scope;
// nullopt with `bad` set to the first that is not.
std::optional<scope_set> parse_scope_list(const std::vector<std::string>& words, std::string* bad = nullptr);

// A token's own scopes (its `scope` claim, or `scp` words): unknown words are ignored, since an
// issuer serves many services and their scopes.
void add_known_scopes(std::string_view words, scope_set& into);

}  // namespace userapi::auth
