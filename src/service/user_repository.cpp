#include "userapi/service/user_repository.hpp"

#include <string>

namespace userapi::service {

std::vector<std::optional<user>> user_repository::find_many(const std::vector<std::int64_t>& ids) {
    std::vector<std::optional<user>> out;
    out.reserve(ids.size());
    for (const auto id : ids) out.push_back(find(id));
    return out;
}

void user_repository::seed(std::int64_t n) {
    for (std::int64_t i = 1; i <= n; ++i) {
        const auto s = std::to_string(i);
        create({"User " + s, "user" + s + "@example.com"});
    }
}

void seed_users(user_repository& repo, std::int64_t n) {
    if (n > 0 && repo.size() == 0) repo.seed(n);
}

}  // namespace userapi::service
