// Users in memory: what a test or a throwaway server needs. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

#include "userapi/service/user_repository.hpp"

namespace userapi::service {

class memory_user_repository final : public user_repository {
public:
    std::optional<user> find(std::int64_t id) override;
    write_result create(const new_user& u) override;
    write_result update(std::int64_t id, const user_patch& patch, const precondition& pre) override;
    write_status remove(std::int64_t id, const precondition& pre) override;
    std::vector<user> list(std::int64_t after, std::size_t limit) override;
    std::size_t size() override { return users_.size(); }

private:
    std::map<std::int64_t, user> users_;
    std::unordered_map<std::string, std::int64_t> emails_;  // lower-cased email -> id
    std::int64_t last_id_ = 0;
};

}  // namespace userapi::service
