// The whole server assembled from its settings: the I/O thread pool, the DB thread, the
// user service, the rate limiter, the listener, the cache sweeper and the signal-driven drain.
#pragma once

#include <memory>
#include <string>

#include "userapi/config/config.hpp"
#include "userapi/core/clock.hpp"
#include "userapi/service/user_repository.hpp"

namespace userapi::app {

// The --api-keys file and a --jwt-jwks file read as the server will read them: an unusable one
// throws auth::setup_error naming it, before anything is logged (a JWK Set URL is fetched by
// start()).
void check_credential_files(const config::settings& cfg);

class server {
public:
    // `repo` null: the SQLite store at cfg.db_path (throws storage_error when it cannot be
    // opened). `clock` null: the system clock (tests pass their own).
    explicit server(config::settings cfg, std::unique_ptr<service::user_repository> repo = nullptr,
                    const core::clock* clock = nullptr);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Seeds the store, binds the listen address (throws std::system_error when it cannot)
    // and starts every thread. Returns once the server accepts connections.
    void start();

    // The bound port (useful with port 0) and the "http://ADDR:PORT" it serves.
    unsigned short port() const;
    std::string url() const;

    // Starts a graceful drain, as SIGTERM does. Safe from any thread.
    void stop();

    // Blocks until the drain has finished and every thread has ended.
    void wait();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace userapi::app
