#include "userapi/service/memory_user_repository.hpp"

#include <algorithm>
#include <cctype>

namespace userapi::service {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

}  // namespace

std::optional<user> memory_user_repository::find(std::int64_t id) {
    auto it = users_.find(id);
    if (it == users_.end()) return std::nullopt;
    return it->second;
}

write_result memory_user_repository::create(const new_user& u) {
    auto [it, inserted] = emails_.try_emplace(lower(u.email), last_id_ + 1);
    if (!inserted) return {write_status::email_taken, {}};
    user stored{++last_id_, u.name, u.email, 1};
    users_.emplace(stored.id, stored);
    return {write_status::done, std::move(stored)};
}

write_result memory_user_repository::update(std::int64_t id, const user_patch& patch, const precondition& pre) {
    auto it = users_.find(id);
    if (it == users_.end()) return {write_status::not_found, {}};
    user& u = it->second;
    if (!pre.matches(u.version)) return {write_status::precondition_failed, {}};
    if (patch.email) {
        const auto owner = emails_.find(lower(*patch.email));
        if (owner != emails_.end() && owner->second != id) return {write_status::email_taken, {}};
    }
    user next = u;
    if (patch.name) next.name = *patch.name;
    if (patch.email) next.email = *patch.email;
    if (next.name != u.name || next.email != u.email) {
        ++next.version;
        emails_.erase(lower(u.email));
        emails_[lower(next.email)] = id;
        u = next;
    }
    return {write_status::done, u};
}

write_status memory_user_repository::remove(std::int64_t id, const precondition& pre) {
    auto it = users_.find(id);
    if (it == users_.end()) return write_status::not_found;
    if (!pre.matches(it->second.version)) return write_status::precondition_failed;
    emails_.erase(lower(it->second.email));
    users_.erase(it);
    return write_status::done;
}

std::vector<user> memory_user_repository::list(std::int64_t after, std::size_t limit) {
    std::vector<user> out;
    for (auto it = users_.upper_bound(after); it != users_.end() && out.size() < limit; ++it) out.push_back(it->second);
    return out;
}

}  // namespace userapi::service
