#include "userapi/service/user_repository.hpp"

#include <string>

namespace userapi::service {

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
