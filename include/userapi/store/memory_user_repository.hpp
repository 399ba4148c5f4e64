// Users in memory: what a test or a throwaway server needs. Not thread-safe.
#pragma once

#include <chrono>
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
    service::write_result remove(std::int64_t id, const service::precondition& pre) override;
    service::write_result create_once(const service::new_user& u, const service::idempotency_key& k) override;
    service::write_result update_once(std::int64_t id, const service::user_patch& patch,
                                      const service::precondition& pre, const service::idempotency_key& k) override;
    service::write_result remove_once(std::int64_t id, const service::precondition& pre,
                                      const service::idempotency_key& k) override;
    std::size_t purge_keys(std::chrono::seconds ttl) override;
    std::vector<service::user> list(std::int64_t after, std::size_t limit) override;
    std::size_t size() override { return users_.size(); }

private:
    struct recorded {
        std::string fingerprint;
        service::write_result outcome;
        std::chrono::system_clock::time_point at;
    };
    // The recorded outcome for `k`, or `write()`'s, recorded now.
    template <class Write>
    service::write_result once(const service::idempotency_key& k, Write write);

    std::map<std::pair<std::string, std::string>, recorded> keys_;  // (scope, key)
    std::map<std::int64_t, service::user> users_;
    std::unordered_map<std::string, std::int64_t> emails_;  // lower-cased email -> id
    std::int64_t last_id_ = 0;
};

}  // namespace userapi::store
