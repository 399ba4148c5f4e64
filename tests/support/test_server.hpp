// The real server, in-process, on 127.0.0.1 and an ephemeral port.
#pragma once

#include <memory>

#include "userapi/app/server.hpp"
#include "userapi/log/log.hpp"

namespace userapi::testing {

// Settings for tests: ephemeral port, 50 users in an in-memory SQLite store, a short DB
// latency, no rate limit.
inline config::settings test_settings() {
    config::settings s;
    s.port = 0;
    s.threads = 2;
    s.seed_users = 50;
    s.db_latency_ms = 20;
    s.rate_limit_enabled = false;
    s.log_level = "warn";
    s.db_path = ":memory:";
    return s;
}

class test_server {
public:
    // `clock`: what the cache, the limiter and the deadlines read (a test's manual clock).
    explicit test_server(config::settings s = test_settings(), std::unique_ptr<service::user_repository> repo = nullptr,
                         spdlog::sink_ptr log_sink = nullptr, const core::clock* clock = nullptr)
        : cfg_(std::move(s)) {
        log::setup_logging(cfg_.log_level, cfg_.log_format, std::move(log_sink));
        server_ = std::make_unique<app::server>(cfg_, std::move(repo), clock);
        server_->start();
    }
    ~test_server() {
        server_->stop();
        server_->wait();
    }
    std::uint16_t port() const { return server_->port(); }
    app::server& get() { return *server_; }

private:
    config::settings cfg_;
    std::unique_ptr<app::server> server_;
};

}  // namespace userapi::testing
