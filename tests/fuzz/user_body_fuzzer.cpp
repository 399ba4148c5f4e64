// Fuzz target: POST /users bodies through validation. An accepted body must satisfy every
// rule of the contract, and its user must survive a round trip through the stored JSON.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "userapi/service/user_validation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace userapi::service;
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_new_user(body);
    if (auto* bad = std::get_if<invalid_user>(&parsed)) {
        if (bad->detail.empty()) std::abort();
        return 0;
    }
    const auto& u = std::get<new_user>(parsed);
    if (u.name.empty() || utf8_length(u.name) > kMaxNameChars || !is_valid_email(u.email)) std::abort();
    const auto back = nlohmann::json::parse(to_json(user{1, u.name, u.email}));
    if (back["name"] != u.name || back["email"] != u.email) std::abort();
    return 0;
}
