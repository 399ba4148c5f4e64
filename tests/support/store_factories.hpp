// Every user store, as a factory the repository contract tests run against: a fresh, empty
// store per test. A store whose engine is missing here makes nothing (the test skips).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "userapi/service/memory_user_repository.hpp"
#include "userapi/service/sqlite_user_repository.hpp"

namespace userapi::testing {

struct store_factory {
    std::string name;
    std::function<std::unique_ptr<service::user_repository>()> make;
};

inline std::vector<store_factory> all_stores() {
    return {
        {"memory", [] { return std::make_unique<service::memory_user_repository>(); }},
        {"sqlite", [] { return std::make_unique<service::sqlite_user_repository>(":memory:"); }},
    };
}

}  // namespace userapi::testing
