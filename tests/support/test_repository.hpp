// Repositories for tests: an in-memory store that counts calls and can be told to fail.
#pragma once

#include <atomic>
#include <functional>

#include "userapi/service/memory_user_repository.hpp"

namespace userapi::testing {

class counting_repository final : public service::user_repository {
public:
    std::optional<service::user> find(std::int64_t id) override {
        ++finds;
        if (on_find) on_find(id);
        if (fail_finds) throw service::storage_error("disk on fire");
        return inner.find(id);
    }
    service::create_outcome create(const service::new_user& u) override {
        ++creates;
        if (fail_creates) throw service::storage_error("disk on fire");
        return inner.create(u);
    }
    std::size_t size() override { return inner.size(); }

    service::memory_user_repository inner;
    std::atomic<int> finds{0}, creates{0};
    std::atomic<bool> fail_finds{false}, fail_creates{false};
    std::function<void(std::int64_t)> on_find;  // runs inside find(), on the DB queue
};

}  // namespace userapi::testing
