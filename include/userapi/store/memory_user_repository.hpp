// Users in memory: what a test or a throwaway server needs. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

#include "userapi/service/user_repository.hpp"

namespace userapi::store {

class memory_user_repository final : public service::user_repository {
public:
    std::optional<service::user> find(std::int64_t id) override;
    service::write_result create(const service::new_user& u) override;
    service::write_result update(std::int64_t id, const service::user_patch& patch,
                                 const service::precondition& pre) override;
    service::write_status remove(std::int64_t id, const service::precondition& pre) override;
    std::vector<service::user> list(std::int64_t after, std::size_t limit) override;
    std::size_t size() override { return users_.size(); }

private:
    std::map<std::int64_t, service::user> users_;
    std::unordered_map<std::string, std::int64_t> emails_;  // lower-cased email -> id
    std::int64_t last_id_ = 0;
};

}  // namespace userapi::store
