#include "userapi/service/user_repository.hpp"

#include <string>

namespace userapi::service {

void seed_users(user_repository& repo, std::int64_t n) {
    if (repo.size() != 0) return;
    for (std::int64_t i = 1; i <= n; ++i) {
        const auto s = std::to_string(i);
        repo.create({"User " + s, "user" + s + "@example.com"});
    }
}

}  // namespace userapi::service
