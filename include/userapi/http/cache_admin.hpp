// DELETE /cache and GET /cache-status (the admin scope, checked by auth_gate before).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "userapi/config/config.hpp"
#include "userapi/http/exchange.hpp"
#include "userapi/http/instance_info.hpp"
#include "userapi/http/metrics.hpp"
#include "userapi/service/user_service.hpp"

namespace userapi::http {

class cache_admin {
public:
    cache_admin(const config::settings& cfg, service::user_service& users, const metrics& stats,
                const instance_info& instance)
        : cfg_(cfg), users_(users), stats_(stats), instance_(instance) {}

    boost::asio::awaitable<void> clear(exchange& x);  // DELETE /cache
    void status(exchange& x);                         // GET/HEAD /cache-status

private:
    const config::settings& cfg_;
    service::user_service& users_;
    const metrics& stats_;
    const instance_info& instance_;
};

}  // namespace userapi::http
