// What operators and their tools read: GET /healthz (liveness, draining), GET /readyz (the
// stores answer) and GET /metrics (Prometheus text). None is rate limited.
#pragma once

#include "userapi/http/exchange.hpp"
#include "userapi/http/instance_info.hpp"
#include "userapi/http/metrics.hpp"
#include "userapi/limit/local_rate_limiter.hpp"
#include "userapi/service/user_service.hpp"

namespace userapi::http {

class ops_endpoints {
public:
    // `limiter` may be null: rate limiting off.
    ops_endpoints(const service::user_service& users, const limit::local_rate_limiter* limiter, const metrics& stats,
                  const server_state& state, const instance_info& instance)
        : users_(users), limiter_(limiter), stats_(stats), state_(state), instance_(instance) {}

    void healthz(exchange& x);
    void readyz(exchange& x);
    void metrics_text(exchange& x);

private:
    // What /readyz reports and userapi_ready counts: draining first, then each store not answering.
    std::vector<std::string> unready_reasons() const;

    const service::user_service& users_;
    const limit::local_rate_limiter* limiter_;
    const metrics& stats_;
    const server_state& state_;
    const instance_info& instance_;
};

}  // namespace userapi::http
