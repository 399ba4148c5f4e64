// What operators and their tools read: GET /healthz (liveness, draining) and GET /metrics
// (Prometheus text). Neither is rate limited.
#pragma once

#include "userapi/http/exchange.hpp"
#include "userapi/http/metrics.hpp"
#include "userapi/http/rate_limiter.hpp"
#include "userapi/service/user_service.hpp"

namespace userapi::http {

class ops_endpoints {
public:
    // `limiter` may be null: rate limiting off.
    ops_endpoints(const service::user_service& users, const rate_limiter* limiter, const metrics& stats,
                  const server_state& state)
        : users_(users), limiter_(limiter), stats_(stats), state_(state) {}

    void healthz(exchange& x);
    void metrics_text(exchange& x);

private:
    const service::user_service& users_;
    const rate_limiter* limiter_;
    const metrics& stats_;
    const server_state& state_;
};

}  // namespace userapi::http
