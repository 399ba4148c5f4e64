#include "userapi/http/problem.hpp"

#include <nlohmann/json.hpp>

namespace userapi::http {

void set_problem(response& res, unsigned status, std::string_view detail) {
    res.result(status);
    nlohmann::ordered_json j;
    j["type"] = "about:blank";
    j["title"] = std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
    j["status"] = status;
    j["detail"] = std::string(detail);
    // Client text inside a detail may hold bytes that are not UTF-8: replace, never throw.
    res.body() = core::shared_bytes(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    res.set(bhttp::field::content_type, "application/problem+json");
}

}  // namespace userapi::http
