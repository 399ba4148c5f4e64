// Turns one parsed request into one response: 404/405 first, then credentials (auth_gate), then
// the rate limit (the identity's bucket, or the address's), routing to the resource that
// serves the path, and what every response gets (Date, X-Request-Id, metrics, the access log).
// It holds no per-request state, so one handler serves every session on every thread.
#pragma once

#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "userapi/auth/authenticator.hpp"
#include "userapi/config/config.hpp"
#include "userapi/core/client_resolver.hpp"
#include "userapi/http/auth_gate.hpp"
#include "userapi/http/cache_admin.hpp"
#include "userapi/http/exchange.hpp"
#include "userapi/http/instance_info.hpp"
#include "userapi/http/metrics.hpp"
#include "userapi/http/ops_endpoints.hpp"
#include "userapi/http/request_handler.hpp"
#include "userapi/http/users_resource.hpp"
#include "userapi/limit/identity_rate_limiter.hpp"
#include "userapi/limit/local_rate_limiter.hpp"
#include "userapi/limit/redis_rate_limiter.hpp"
#include "userapi/service/user_service.hpp"

namespace userapi::http {

// Who may do what: the credentials and the identities' buckets. Null members: the handler makes
// an authenticator of its own from the settings' admin token (tests), and authenticated
// requests are charged to their address.
struct auth_parts {
    auth::authenticator* authenticator = nullptr;
    limit::identity_rate_limiter* identities = nullptr;
};

class handler final : public request_handler {
public:
    // `limiter` may be null: rate limiting off. `shared`, when set, decides instead of it (the
    // buckets in Redis), with `limiter` as its local fallback.
    handler(const config::settings& cfg, service::user_service& users, limit::local_rate_limiter* limiter,
            const core::client_resolver& clients, metrics& stats, server_state& state, instance_info instance,
            limit::redis_rate_limiter* shared = nullptr, auth_parts auth = {});

    // Never throws; every failure becomes a problem+json response.
    boost::asio::awaitable<response> handle(const request& req, request_info info) override;

    // Cached users (on the local limiter), health, readiness and metrics.
    at_once answer_at_once(const request& req, const request_info& info, std::string& head) override;

    // A refused request to a limited route still costs a token, and says so.
    boost::asio::awaitable<response> reject(const request& req, unsigned status, std::string_view detail,
                                            request_info info) override;

    // A request whose credentials are refused whatever its body says.
    bool refuses_unread(const request& header) override;

private:
    // Credentials, then the rate limit charged to the identity (or the address); false with the
    // refusal set. A kid the JWK Set lacks waits for one refresh of its URL.
    boost::asio::awaitable<bool> authenticate(exchange& x);
    const core::bucket_policy& policy_of(const auth::principal& who) const;
    // Charges the client one token on a limited route; false, with the 429 (or the store's
    // 503) set, when it may not proceed.
    boost::asio::awaitable<bool> admit(exchange& x);
    bool apply(exchange& x, const limit::rate_decision& d, const core::bucket_policy& policy, bool identity);
    bool admit_locally(exchange& x);
    // The commonest request of all, a cached user in HTTP/1.1, rendered straight into `head`.
    at_once render_cached_user(exchange& x, std::int64_t id, const service::user_cache::lookup& found,
                               std::string& head);
    void record(exchange& x, unsigned status);  // metrics and the access line
    boost::asio::awaitable<void> dispatch(exchange& x);
    void finish(exchange& x);

    limit::local_rate_limiter* limiter_;
    limit::redis_rate_limiter* shared_;
    std::unique_ptr<auth::authenticator> own_auth_;  // when none was given
    auth_gate gate_;
    limit::identity_rate_limiter* identities_;
    const core::bucket_policy identity_policy_;
    const core::client_resolver& clients_;
    metrics& stats_;
    server_state& state_;
    instance_info instance_;
    service::user_service& users_service_;
    users_resource users_;
    cache_admin cache_;
    ops_endpoints ops_;
};

}  // namespace userapi::http
