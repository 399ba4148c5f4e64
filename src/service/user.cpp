#include "userapi/service/user.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace userapi::service {

bool precondition::matches(std::int64_t version) const {
    return any || std::find(versions.begin(), versions.end(), version) != versions.end();
}

std::string to_json(const user& u) {
    nlohmann::ordered_json j;
    j["id"] = u.id;
    j["name"] = u.name;
    j["email"] = u.email;
    return j.dump();
}

}  // namespace userapi::service
