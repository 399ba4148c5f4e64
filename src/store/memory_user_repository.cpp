#include "userapi/store/memory_user_repository.hpp"

#include <algorithm>
#include <cctype>

namespace userapi::store {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

}  // namespace

std::optional<service::user> memory_user_repository::find(std::int64_t id) {
    auto it = users_.find(id);
    if (it == users_.end()) return std::nullopt;
    return it->second;
}

service::write_result memory_user_repository::create(const service::new_user& u) {
    auto [it, inserted] = emails_.try_emplace(lower(u.email), last_id_ + 1);
    if (!inserted) return {service::write_status::email_taken, {}};
    service::user stored{++last_id_, u.name, u.email, 1};
    users_.emplace(stored.id, stored);
    return {service::write_status::done, std::move(stored)};
}

service::write_result memory_user_repository::update(std::int64_t id, const service::user_patch& patch,
                                                     const service::precondition& pre) {
    auto it = users_.find(id);
    if (it == users_.end()) return {service::write_status::not_found, {}};
    service::user& u = it->second;
    if (!pre.matches(u.version)) return {service::write_status::precondition_failed, {}};
    if (patch.email) {
        const auto owner = emails_.find(lower(*patch.email));
        if (owner != emails_.end() && owner->second != id) return {service::write_status::email_taken, {}};
    }
    service::user next = u;
    if (patch.name) next.name = *patch.name;
    if (patch.email) next.email = *patch.email;
    if (next.name != u.name || next.email != u.email) {
        ++next.version;
        emails_.erase(lower(u.email));
        emails_[lower(next.email)] = id;
        u = next;
    }
    return {service::write_status::done, u};
}

service::write_result memory_user_repository::remove(std::int64_t id, const service::precondition& pre) {
    auto it = users_.find(id);
    if (it == users_.end()) return {service::write_status::not_found, {}};
    if (!pre.matches(it->second.version)) return {service::write_status::precondition_failed, {}};
    service::write_result out{service::write_status::done, {id, {}, {}, it->second.version}};
    emails_.erase(lower(it->second.email));
    users_.erase(it);
    return out;
}

template <class Write>
service::write_result memory_user_repository::once(const service::idempotency_key& k, Write write) {
    const auto now = std::chrono::system_clock::now();
    auto it = keys_.find({k.scope, k.key});
    if (it != keys_.end() && now - it->second.at < k.ttl) {
        if (it->second.fingerprint != k.fingerprint)
            return {service::write_status::done, {}, service::key_outcome::mismatch};
        auto replay = it->second.outcome;
        replay.key = service::key_outcome::replayed;
        return replay;
    }
    auto out = write();
    keys_[{k.scope, k.key}] = {k.fingerprint, out, now};
    return out;
}

service::write_result memory_user_repository::create_once(const service::new_user& u,
                                                          const service::idempotency_key& k) {
    return once(k, [&] { return create(u); });
}

service::write_result memory_user_repository::update_once(std::int64_t id, const service::user_patch& patch,
                                                          const service::precondition& pre,
                                                          const service::idempotency_key& k) {
    return once(k, [&] { return update(id, patch, pre); });
}

service::write_result memory_user_repository::remove_once(std::int64_t id, const service::precondition& pre,
                                                          const service::idempotency_key& k) {
    return once(k, [&] { return remove(id, pre); });
}

std::size_t memory_user_repository::purge_keys(std::chrono::seconds ttl) {
    const auto now = std::chrono::system_clock::now();
    return std::erase_if(keys_, [&](const auto& kv) { return now - kv.second.at >= ttl; });
}

std::vector<service::user> memory_user_repository::list(std::int64_t after, std::size_t limit) {
    std::vector<service::user> out;
    for (auto it = users_.upper_bound(after); it != users_.end() && out.size() < limit; ++it) out.push_back(it->second);
    return out;
}

}  // namespace userapi::store
