// Google Benchmark microbenchmarks of the hot path's parts, single- and multi-threaded so lock
// contention shows: cache hit/miss/insert, token bucket acquire, single-flight join, and one
// full request through the handler without sockets.
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "userapi/core/single_flight.hpp"
#include "userapi/http/handler.hpp"
#include "userapi/log/log.hpp"
#include "userapi/store/memory_user_repository.hpp"

using namespace std::chrono_literals;
using namespace userapi;

namespace {

service::cached_user sample_user(std::int64_t id) {
    return {core::shared_bytes(to_json(service::user{id, "User " + std::to_string(id), "user@example.com"})), 1};
}

core::system_clock real_clock;

// One cache shared by all benchmark threads, filled with 10,000 users.
service::user_cache& shared_cache() {
    static service::user_cache* c = [] {
        auto* cache = new service::user_cache(real_clock, 100000, 3600s);
        for (std::int64_t i = 1; i <= 10000; ++i) cache->written(i, sample_user(i));
        return cache;
    }();
    return *c;
}

void BM_CacheHit(benchmark::State& state) {
    auto& cache = shared_cache();
    std::int64_t id = 1 + state.thread_index();
    for (auto _ : state) {
        benchmark::DoNotOptimize(cache.get(id));
        id = id % 10000 + 1;
    }
}
BENCHMARK(BM_CacheHit)->Threads(1)->Threads(2)->Threads(4);

// Every thread reads the same id, as scenario 1 does: what the threads share is what it costs.
void BM_CacheHitOneKey(benchmark::State& state) {
    auto& cache = shared_cache();
    for (auto _ : state) benchmark::DoNotOptimize(cache.get(1));
}
BENCHMARK(BM_CacheHitOneKey)->Threads(1)->Threads(2);

void BM_CacheMiss(benchmark::State& state) {
    auto& cache = shared_cache();
    for (auto _ : state) benchmark::DoNotOptimize(cache.get(-1));
}
BENCHMARK(BM_CacheMiss)->Threads(1)->Threads(2);

void BM_CacheInsert(benchmark::State& state) {
    service::user_cache cache(real_clock, 10000, 3600s);
    const auto user = sample_user(1);
    std::int64_t id = 0;
    for (auto _ : state) cache.written(++id, user);  // evicts once full
}
BENCHMARK(BM_CacheInsert);

void BM_TokenBucketAcquire(benchmark::State& state) {
    static limit::local_rate_limiter limiter(real_clock, {1e12, 1e12}, 100000);
    core::ip_address client = *core::parse_ip("10.0.0.0");
    client.bytes[15] = static_cast<std::uint8_t>(state.thread_index());
    for (auto _ : state) benchmark::DoNotOptimize(limiter.acquire(client));
}
BENCHMARK(BM_TokenBucketAcquire)->Threads(1)->Threads(2)->Threads(4);

void BM_SingleFlightJoinComplete(benchmark::State& state) {
    core::single_flight<std::int64_t, int> flight;
    std::int64_t key = 0;
    for (auto _ : state) {
        ++key;
        auto first = flight.join(key, [](const int&, bool) {});
        for (int i = 0; i < 9; ++i) flight.join(key, [](const int&, bool) {});
        flight.complete(first.leader_of, 1);
    }
    state.SetItemsProcessed(state.iterations() * 10);
}
BENCHMARK(BM_SingleFlightJoinComplete);

// GET /users/1 answered from the cache, through routing, rate limiting off, the handler and
// response assembly: everything but the socket.
void BM_HandlerCachedGet(benchmark::State& state) {
    static bool logging = (log::setup_logging("warn", "text"), true);
    (void)logging;
    config::settings cfg;
    core::manual_clock clock;
    boost::asio::io_context ioc;
    store::memory_user_repository repo;
    service::seed_users(repo, 10);
    service::user_cache cache(clock, 100, 60s);
    service::db_queue db(ioc, clock, 0ms, 100);
    service::user_service users(cache, db, repo, clock);
    core::client_resolver resolver({}, 64);
    http::metrics stats;
    http::server_state server_state;
    const std::string name = "bench";
    http::handler h(cfg, users, nullptr, resolver, stats, server_state, {name, "sqlite", "local", {}});
    http::request req{http::bhttp::verb::get, "/users/1", 11};
    const auto peer = *core::parse_ip("127.0.0.1");
    auto run_one = [&] {
        boost::asio::co_spawn(ioc, h.handle(req, http::request_info{peer, "bench"}),
                              [](std::exception_ptr, http::response r) { benchmark::DoNotOptimize(r); });
        ioc.restart();
        ioc.run();
    };
    run_one();  // fills the cache
    for (auto _ : state) run_one();
}
BENCHMARK(BM_HandlerCachedGet);

}  // namespace

BENCHMARK_MAIN();
