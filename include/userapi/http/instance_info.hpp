// Who this instance is and what it runs on, for /cache-status and /readyz.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace userapi::http {

struct instance_info {
    const std::string& name;       // --instance-name, or host:port; set before serving
    std::string users_store;       // "sqlite" or "postgresql"
    std::string rate_limit_store;  // "local" or "redis"
    // Why the stores are not ready, one reason each; empty when they answered their last check.
    std::function<std::vector<std::string>()> unready;
    // Metrics of what the server assembled around the handler (the stores), for /metrics.
    std::function<void(class prometheus_writer&)> store_metrics;
};

}  // namespace userapi::http
