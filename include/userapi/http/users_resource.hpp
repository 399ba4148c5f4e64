// /users and /users/{id}: reading and creating users through the user service.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "userapi/config/config.hpp"
#include "userapi/http/exchange.hpp"
#include "userapi/service/user_service.hpp"

namespace userapi::http {

class users_resource {
public:
    users_resource(const config::settings& cfg, service::user_service& users) : cfg_(cfg), users_(users) {}

    boost::asio::awaitable<void> get(exchange& x);     // GET/HEAD /users/{id}
    boost::asio::awaitable<void> create(exchange& x);  // POST /users

private:
    const config::settings& cfg_;
    service::user_service& users_;
};

}  // namespace userapi::http
