// Repositories for tests: an in-memory store that counts calls, can be told to fail, and can
// hold a read inside find() (on_find) so a test decides what happens while it is in flight.
#pragma once

#include <atomic>
#include <functional>

#include "userapi/store/memory_user_repository.hpp"

namespace userapi::testing {

class counting_repository final : public service::user_repository {
public:
    std::optional<service::user> find(std::int64_t id) override {
        ++finds;
        if (fail_finds) throw service::storage_error("disk on fire");
        auto found = inner.find(id);  // what the store holds when the read runs...
        if (on_find) on_find(id);     // ...even if a test changes it before the read returns
        return found;
    }
    service::write_result create(const service::new_user& u) override {
        ++creates;
        if (fail_writes) throw service::storage_error("disk on fire");
        if (fail_maybe_sent) throw service::storage_error("connection lost", true);
        return inner.create(u);
    }
    service::write_result update(std::int64_t id, const service::user_patch& p,
                                 const service::precondition& pre) override {
        ++updates;
        if (fail_writes) throw service::storage_error("disk on fire");
        auto r = inner.update(id, p, pre);  // committed...
        if (after_write) after_write(id);   // ...and still on its way back
        return r;
    }
    service::write_result remove(std::int64_t id, const service::precondition& pre) override {
        ++removes;
        if (fail_writes) throw service::storage_error("disk on fire");
        auto r = inner.remove(id, pre);
        if (after_write) after_write(id);
        return r;
    }
    service::write_result create_once(const service::new_user& u, const service::idempotency_key& k) override {
        ++creates;
        if (fail_writes) throw service::storage_error("disk on fire");
        return inner.create_once(u, k);
    }
    service::write_result update_once(std::int64_t id, const service::user_patch& p, const service::precondition& pre,
                                      const service::idempotency_key& k) override {
        ++updates;
        if (fail_writes) throw service::storage_error("disk on fire");
        return inner.update_once(id, p, pre, k);
    }
    service::write_result remove_once(std::int64_t id, const service::precondition& pre,
                                      const service::idempotency_key& k) override {
        ++removes;
        if (fail_writes) throw service::storage_error("disk on fire");
        return inner.remove_once(id, pre, k);
    }
    std::size_t purge_keys(std::chrono::seconds ttl) override { return inner.purge_keys(ttl); }
    std::vector<service::user> list(std::int64_t after, std::size_t limit) override {
        ++lists;
        if (fail_finds) throw service::storage_error("disk on fire");
        return inner.list(after, limit);
    }
    std::size_t size() override { return inner.size(); }

    store::memory_user_repository inner;
    std::atomic<int> finds{0}, creates{0}, updates{0}, removes{0}, lists{0};
    std::atomic<bool> fail_finds{false}, fail_writes{false};
    std::function<void(std::int64_t)> on_find;      // runs inside find(), on the DB queue
    std::function<void(std::int64_t)> after_write;  // runs inside update()/remove() once applied
    std::atomic<bool> fail_maybe_sent{false};       // writes fail as if the connection broke after sending
};

}  // namespace userapi::testing
