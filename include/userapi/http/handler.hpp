// Turns one parsed request into one response: request id, rate limit, routing, the user
// service, problem+json for every error, metrics and the access log. It holds no per-request
// state, so one handler serves every session on every thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "userapi/config/config.hpp"
#include "userapi/core/client_resolver.hpp"
#include "userapi/http/beast_types.hpp"
#include "userapi/http/metrics.hpp"
#include "userapi/http/rate_limiter.hpp"
#include "userapi/http/request_handler.hpp"
#include "userapi/service/user_service.hpp"

namespace userapi::http {

class handler final : public request_handler {
public:
    // `limiter` may be null: rate limiting off.
    handler(const config::settings& cfg, service::user_service& users, rate_limiter* limiter,
            const core::client_resolver& clients, metrics& stats, server_state& state);

    // Never throws; every failure becomes a problem+json response.
    boost::asio::awaitable<response> handle(const request& req, const request_info& info) override;

    // A refused request to a limited route still costs a token, and says so.
    response reject(const request& req, unsigned status, std::string_view detail, const request_info& info) override;

private:
    struct exchange;  // one request's working state
    bool admit(exchange& x);
    boost::asio::awaitable<void> dispatch(exchange& x);
    boost::asio::awaitable<void> get_user(exchange& x);
    boost::asio::awaitable<void> create_user(exchange& x);
    void delete_cache(exchange& x);
    void cache_status(exchange& x);
    void render_metrics(exchange& x);
    void finish(exchange& x);

    const config::settings& cfg_;
    service::user_service& users_;
    rate_limiter* limiter_;
    const core::client_resolver& clients_;
    metrics& stats_;
    server_state& state_;
};

}  // namespace userapi::http
