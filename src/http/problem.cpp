#include "userapi/http/problem.hpp"

#include <nlohmann/json.hpp>

namespace userapi::http {

namespace {

nlohmann::ordered_json problem(unsigned status, std::string_view detail) {
    nlohmann::ordered_json j;
    j["type"] = "about:blank";
    j["title"] = std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
    j["status"] = status;
    j["detail"] = std::string(detail);
    return j;
}

void set_body(response& res, unsigned status, const nlohmann::ordered_json& j) {
    res.result(status);
    // Client text inside a detail may hold bytes that are not UTF-8: replace, never throw.
    res.body() = core::shared_bytes(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    res.set(bhttp::field::content_type, "application/problem+json");
}

}  // namespace

void set_problem(response& res, unsigned status, std::string_view detail) {
    set_body(res, status, problem(status, detail));
}

void set_write_problem(response& res, unsigned status, std::string_view detail, bool outcome_known) {
    auto j = problem(status, detail);
    if (outcome_known)
        j["written"] = false;
    else
        j["written"] = nullptr;
    set_body(res, status, j);
}

}  // namespace userapi::http
