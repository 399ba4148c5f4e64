// Users in memory: what a test or a throwaway server needs. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <unordered_set>

#include "userapi/service/user_repository.hpp"

namespace userapi::service {

class memory_user_repository final : public user_repository {
public:
    std::optional<user> find(std::int64_t id) override;
    create_outcome create(const new_user& u) override;
    std::size_t size() override { return users_.size(); }

private:
    std::map<std::int64_t, user> users_;
    std::unordered_set<std::string> emails_;  // lower-cased
    std::int64_t last_id_ = 0;
};

}  // namespace userapi::service
