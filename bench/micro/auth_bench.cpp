// Google Benchmark microbenchmarks of credentials: a first verification per algorithm (what a
// token costs before the memo knows it), an API key's first lookup, the memo's answer, and the
// cached hit through the handler's at-once path, anonymous and with each kind of bearer.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <variant>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "support/jwt_minter.hpp"
#include "userapi/auth/api_keys.hpp"
#include "userapi/auth/authenticator.hpp"
#include "userapi/auth/jwt_verifier.hpp"
#include "userapi/http/handler.hpp"
#include "userapi/log/log.hpp"
#include "userapi/store/memory_user_repository.hpp"

using namespace std::chrono_literals;
using namespace userapi;
namespace fixtures = userapi::testing;

namespace {

const auth::jwt_rules kRules{"https://issuer.bench", "userapi", 60};

nlohmann::json claims() {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return {{"iss", kRules.issuer}, {"aud", kRules.audience}, {"sub", "bench"}, {"exp", now + 3600},
            {"iat", now},           {"scope", "users:read"}};
}

// verify_jwt from the compact token to the principal: no memo, every step a first request pays.
void BM_FirstVerification(benchmark::State& state, const char* kind, const char* alg) {
    const auto& key = fixtures::shared_key(kind, std::string("bench-") + alg);
    const auto keys = std::get<auth::jwk_set>(auth::jwk_set::parse(fixtures::jwks_of({key.jwk(alg)})));
    const auto token = key.token(alg, claims());
    const double now = static_cast<double>(std::time(nullptr));
    for (auto _ : state) {
        auto r = auth::verify_jwt(token, keys, kRules, now);
        if (!r.who) state.SkipWithError(r.description);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK_CAPTURE(BM_FirstVerification, RS256, "RSA", "RS256")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_FirstVerification, PS256, "RSA", "PS256")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_FirstVerification, ES256, "EC", "ES256")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_FirstVerification, EdDSA, "OKP", "EdDSA")->Unit(benchmark::kMicrosecond);

// An API key against a file of N keys: SHA-256, then every digest compared.
void BM_ApiKeyFirstLookup(benchmark::State& state) {
    std::string entries;
    std::string key;
    for (int i = 0; i < state.range(0); ++i) {
        auto k = auth::make_api_key("k" + std::to_string(i), {"users:read"});
        entries += (i ? "," : "") + k.entry_json;
        key = k.key;
    }
    const auto set = std::get<auth::api_key_set>(auth::api_key_set::parse("{\"keys\":[" + entries + "]}"));
    for (auto _ : state) benchmark::DoNotOptimize(set.find(key));
}
BENCHMARK(BM_ApiKeyFirstLookup)->Arg(1)->Arg(100);

core::system_clock real_clock;

// The handler's answer for a cached GET /users/1 as the session asks for it (answer_at_once,
// the head rendered into a reused buffer), with the token's verification remembered.
void BM_CachedHitAtOnce(benchmark::State& state, const char* credential) {
    static bool logging = (log::setup_logging("warn", "text"), true);
    (void)logging;
    const auto& ec = fixtures::shared_key("EC", "bench-memo");
    const auto api_key = auth::make_api_key("bench", {"users:read"});
    const std::string dir = "/tmp/userapi-auth-bench-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/keys.json") << "{\"keys\":[" << api_key.entry_json << "]}";
    std::ofstream(dir + "/jwks.json") << fixtures::jwks_of({ec.jwk("ES256")});
    config::settings cfg;
    cfg.anonymous_scopes = std::vector<std::string>{"users:read"};
    cfg.rate_limit_enabled = false;
    auth::options o;
    o.api_keys_file = dir + "/keys.json";
    o.jwks = dir + "/jwks.json";
    o.rules = kRules;
    auth::authenticator authenticator(o, real_clock);
    authenticator.start();
    store::memory_user_repository repo;
    service::seed_users(repo, 10);
    boost::asio::io_context ioc;
    service::user_cache cache(real_clock, 100, 3600s);
    service::db_queue db(ioc, real_clock, 0ms, 100);
    service::user_service users(cache, db, repo, real_clock);
    core::client_resolver resolver({}, 64);
    http::metrics stats;
    http::server_state server_state;
    const std::string name = "bench";
    http::handler h(cfg, users, nullptr, resolver, stats, server_state, {name, "sqlite", "local", {}}, nullptr,
                    {&authenticator, nullptr});
    http::request req{http::bhttp::verb::get, "/users/1", 11};
    const std::string which = credential;
    if (which == "api_key") req.set(http::bhttp::field::authorization, "Bearer " + api_key.key);
    if (which == "jwt") req.set(http::bhttp::field::authorization, "Bearer " + ec.token("ES256", claims()));
    const auto peer = *core::parse_ip("127.0.0.1");
    const http::request_info info{peer, "bench"};
    // The first request reads the user (handle()), the second verifies the token and fills the memo.
    boost::asio::co_spawn(ioc, h.handle(req, info), [](std::exception_ptr, http::response) {});
    ioc.run();
    std::string head;
    boost::asio::co_spawn(ioc, h.handle(req, info), [](std::exception_ptr, http::response) {});
    ioc.restart();
    ioc.run();
    for (auto _ : state) {
        auto r = h.answer_at_once(req, info, head);
        if (r.kind != http::request_handler::at_once::rendered) state.SkipWithError("not answered at once");
        benchmark::DoNotOptimize(r);
    }
    std::filesystem::remove_all(dir);
}
BENCHMARK_CAPTURE(BM_CachedHitAtOnce, anonymous, "anonymous");
BENCHMARK_CAPTURE(BM_CachedHitAtOnce, api_key, "api_key");
BENCHMARK_CAPTURE(BM_CachedHitAtOnce, jwt, "jwt");

}  // namespace

BENCHMARK_MAIN();
