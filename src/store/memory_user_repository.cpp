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

service::write_status memory_user_repository::remove(std::int64_t id, const service::precondition& pre) {
    auto it = users_.find(id);
    if (it == users_.end()) return service::write_status::not_found;
    if (!pre.matches(it->second.version)) return service::write_status::precondition_failed;
    emails_.erase(lower(it->second.email));
    users_.erase(it);
    return service::write_status::done;
}

std::vector<service::user> memory_user_repository::list(std::int64_t after, std::size_t limit) {
    std::vector<service::user> out;
    for (auto it = users_.upper_bound(after); it != users_.end() && out.size() < limit; ++it) out.push_back(it->second);
    return out;
}

}  // namespace userapi::store
