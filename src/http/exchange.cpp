#include "userapi/http/exchange.hpp"

namespace userapi::http {

std::string clip(std::string_view s) { return s.size() <= 64 ? std::string(s) : std::string(s.substr(0, 64)) + "…"; }

void set_json(response& res, unsigned status, core::shared_bytes body) {
    res.result(status);
    res.body() = std::move(body);
    res.set(bhttp::field::content_type, "application/json");
}

}  // namespace userapi::http
