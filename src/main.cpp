// userapi: parse the command line, start the server, print where it listens, wait for a drain.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>

#include "userapi/app/data_commands.hpp"
#include "userapi/app/new_api_key.hpp"
#include "userapi/app/server.hpp"
#include "userapi/auth/authenticator.hpp"
#include "userapi/config/config.hpp"
#include "userapi/log/access_log.hpp"
#include "userapi/log/log.hpp"
#include "userapi/service/user_repository.hpp"
#include "userapi/store/conninfo.hpp"

int main(int argc, char** argv) {
    using namespace userapi;
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && app::is_data_command(args[0])) return app::run_data_command(args);  // export, import, ...
    if (!args.empty() && args[0] == "new-api-key")
        return app::new_api_key_main({args.begin() + 1, args.end()}, std::cout, std::cerr);
    auto loaded = config::load(args, std::getenv("USERAPI_ADMIN_TOKEN"));
    if (!loaded.config) {
        (loaded.exit_code == 0 ? std::cout : std::cerr) << loaded.output << std::flush;
        return loaded.exit_code;
    }
    const auto& cfg = *loaded.config;
    log::setup_logging(cfg.log_level, cfg.log_format);
    // Access lines are batched off the I/O threads; every one is written before main returns.
    log::start_access_log();
    struct access_log_flush {
        ~access_log_flush() { log::stop_access_log(); }
    } flush_at_exit;
    try {  // an unusable key file or JWK Set file: its one line, before anything is logged
        app::check_credential_files(cfg);
    } catch (const auth::setup_error& e) {
        std::cerr << "userapi: " << e.what() << std::endl;
        return 2;
    }
    log::log_line(spdlog::level::info, "starting userapi: " + cfg.summary(store::redact_conninfo));
    try {
        std::optional<app::server> srv;
        try {
            srv.emplace(cfg);
            srv->start();
        } catch (const auth::setup_error& e) {  // an unusable --api-keys or --jwt-jwks
            std::cerr << "userapi: " << e.what() << std::endl;
            return 2;
        } catch (const service::storage_error& e) {
            // An unusable --data file is a configuration error: say so and exit 2.
            log::log_event(spdlog::level::critical, "unusable --data", {{"error", e.what()}});
            std::cerr << "userapi: --data " << e.what() << std::endl;
            return 2;
        }
        std::cout << "listening on " << srv->url() << std::endl;
        srv->wait();
    } catch (const std::exception& e) {
        // Cannot listen (the port in use, an address not on this machine) or another failure
        // at start: one clear line, exit 1, never an abort.
        log::log_event(spdlog::level::critical, "cannot serve",
                       {{"address", cfg.address}, {"port", std::to_string(cfg.port), true}, {"error", e.what()}});
        std::cerr << "userapi: " << e.what() << std::endl;
        return 1;
    }
    log::stop_access_log();  // every line of the drained requests, before the last line
    log::log_line(spdlog::level::info, "stopped");
    spdlog::shutdown();
    return 0;
}
