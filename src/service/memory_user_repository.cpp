#include "userapi/service/memory_user_repository.hpp"

#include <algorithm>
#include <cctype>

namespace userapi::service {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

}  // namespace

std::optional<user> memory_user_repository::find(std::int64_t id) {
    auto it = users_.find(id);
    if (it == users_.end()) return std::nullopt;
    return it->second;
}

create_outcome memory_user_repository::create(const new_user& u) {
    auto [it, inserted] = emails_.insert(lower(u.email));
    if (!inserted) return {};
    user stored{++last_id_, u.name, u.email};
    users_.emplace(stored.id, stored);
    return {true, std::move(stored)};
}

}  // namespace userapi::service
