#include "userapi/service/user.hpp"

#include <nlohmann/json.hpp>

namespace userapi::service {

std::string to_json(const user& u) {
    nlohmann::ordered_json j;
    j["id"] = u.id;
    j["name"] = u.name;
    j["email"] = u.email;
    return j.dump();
}

}  // namespace userapi::service
