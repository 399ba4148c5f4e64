#include "userapi/http/ops_endpoints.hpp"

#include <nlohmann/json.hpp>

#include "userapi/http/process_metrics.hpp"
#include "userapi/http/prometheus_writer.hpp"

namespace userapi::http {

void ops_endpoints::healthz(exchange& x) {
    static const core::shared_bytes ok(R"({"status":"ok"})"), draining(R"({"status":"draining"})");
    const bool leaving = state_.draining.load();
    set_json(x.res, leaving ? 503 : 200, leaving ? draining : ok);
}

std::vector<std::string> ops_endpoints::unready_reasons() const {
    auto reasons = instance_.unready ? instance_.unready() : std::vector<std::string>{};
    if (state_.draining.load()) reasons.insert(reasons.begin(), "draining");
    return reasons;
}

void ops_endpoints::readyz(exchange& x) {
    const auto reasons = unready_reasons();
    if (reasons.empty()) {
        static const core::shared_bytes ready(R"({"status":"ready"})");
        set_json(x.res, 200, ready);
        return;
    }
    nlohmann::ordered_json j;
    j["status"] = "unready";
    j["reasons"] = reasons;
    set_json(x.res, 503, core::shared_bytes(j.dump()));
}

void ops_endpoints::metrics_text(exchange& x) {
    const auto s = users_.stats();
    std::string out;
    out.reserve(8192);
    prometheus_writer w(out);
    stats_.render(w);
    const auto d = [](auto v) { return static_cast<double>(v); };
    w.counter("userapi_cache_hits_total", "GET /users/{id} answered from the cache.", d(s.hits));
    w.counter("userapi_cache_misses_total", "GET /users/{id} not answered from the cache.", d(s.misses));
    w.counter("userapi_cache_evictions_total", "Cache entries removed for capacity.", d(s.cache.evictions));
    w.counter("userapi_cache_expirations_total", "Cache entries removed because their TTL passed.",
              d(s.cache.expirations));
    w.counter("userapi_cache_negative_hits_total", "GET /users/{id} answered 404 from a remembered not-found.",
              d(s.negative_hits));
    w.counter("userapi_cache_stale_served_total", "GET /users/{id} answered from an expired entry (X-Cache: STALE).",
              d(s.stale_served));
    w.counter("userapi_cache_refreshes_total", "Background refreshes started for stale entries.", d(s.refreshes));
    w.gauge("userapi_cache_entries", "Entries in the cache, users and not-found ones.", d(s.cache.size));
    w.gauge("userapi_cache_negative_entries", "Not-found entries in the cache.", d(s.cache.negative_size));
    w.gauge("userapi_cache_capacity", "Most users the cache holds.", d(s.cache.capacity));
    w.counter("userapi_coalesced_requests_total", "Requests that waited for a read another request started.",
              d(s.coalesced));
    w.gauge("userapi_inflight_reads", "Database reads in flight.", d(s.inflight));
    w.counter("userapi_db_reads_total", "Database reads executed.", d(s.reads));
    w.counter("userapi_db_writes_total", "Database writes executed.", d(s.writes));
    w.gauge("userapi_db_queue_depth", "Database operations waiting or running.", d(s.queue_depth));
    w.gauge("userapi_db_queue_limit",
            "The queue depth past which database operations are refused with 503 (db.queue_limit waiting "
            "plus db.concurrency running).",
            d(s.queue_capacity));
    w.gauge("userapi_rate_limit_clients", "Client buckets held by the rate limiter.",
            limiter_ ? d(limiter_->size()) : 0.0);
    w.gauge("userapi_open_connections", "Client connections open now.", d(state_.connections.load()));
    w.gauge("userapi_ready", "1 while GET /readyz answers 200: the stores answer and the server is not draining.",
            unready_reasons().empty() ? 1.0 : 0.0);
    w.family("userapi_build_info", "gauge", "The running build; always 1.");
    w.sample("userapi_build_info", {{"version", USERAPI_VERSION}}, 1);
    if (instance_.store_metrics) instance_.store_metrics(w);
    render_process_metrics(w);
    x.res.result(200);
    x.res.body() = core::shared_bytes(out);
    x.res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace userapi::http
