// Every user store, as a factory the repository contract tests run against: a fresh, empty
// store per test. PostgreSQL comes from the engines the test fixture started (engines.env in
// the build folder); each test gets a database of its own. Without that file the factory makes
// nothing and the test skips (under CI=true it fails instead).
#pragma once

#include <libpq-fe.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "userapi/store/memory_user_repository.hpp"
#include "userapi/store/postgres_user_repository.hpp"
#include "userapi/store/sqlite_user_repository.hpp"

namespace userapi::testing {

struct store_factory {
    std::string name;
    std::function<std::unique_ptr<service::user_repository>()> make;
};

// KEY=VALUE lines of the engines the CTest fixture started, or empty.
inline std::map<std::string, std::string> engines_env() {
    std::map<std::string, std::string> out;
    std::ifstream in(USERAPI_ENGINES_ENV);
    for (std::string line; std::getline(in, line);) {
        const auto eq = line.find('=');
        if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
}

// A new, empty database on the fixture's PostgreSQL; its URI, or "" without one.
inline std::string fresh_postgres_database() {
    const auto env = engines_env();
    const auto port = env.find("USERAPI_TEST_PG_PORT");
    if (port == env.end()) return "";
    static std::atomic<int> counter{0};
    const std::string db = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    const std::string admin = "postgresql://postgres@127.0.0.1:" + port->second + "/postgres";
    PGconn* c = PQconnectdb(admin.c_str());
    PGresult* r = PQexec(c, ("CREATE DATABASE " + db + " OWNER userapi").c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(c);
    return ok ? "postgresql://userapi@127.0.0.1:" + port->second + "/" + db : "";
}

inline bool engines_required() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

inline std::vector<store_factory> all_stores() {
    return {
        {"memory", [] { return std::make_unique<store::memory_user_repository>(); }},
        {"sqlite", [] { return std::make_unique<store::sqlite_user_repository>(":memory:"); }},
        {"postgresql",
         []() -> std::unique_ptr<service::user_repository> {
             const auto uri = fresh_postgres_database();
             if (uri.empty()) return nullptr;
             auto repo = std::make_unique<store::postgres_user_repository>(uri, std::chrono::seconds(5));
             repo->migrate();
             return repo;
         }},
    };
}

}  // namespace userapi::testing
