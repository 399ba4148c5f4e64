#include "userapi/http/shared_rate_limiter.hpp"

#include <hiredis/hiredis.h>

#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace userapi::http {

namespace asio = boost::asio;

namespace {

constexpr double kEpsilon = 1e-9;

std::string number(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

}  // namespace

const char* shared_rate_limiter::script() {
    return R"lua(
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil or ts == nil then
  tokens, ts = cap, now
elseif now > ts then
  tokens, ts = math.min(cap, tokens + (now - ts) * rate), now
end
local allowed = 0
if tokens + 1e-9 >= 1 then
  tokens, allowed = math.max(0, tokens - 1), 1
end
local full_ms = math.ceil((cap - tokens) / rate * 1000)
if full_ms < 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
  redis.call('PEXPIRE', KEYS[1], full_ms)
end
return {allowed, string.format('%.17g', tokens)}
)lua";
}

shared_rate_limiter::shared_rate_limiter(const std::vector<asio::io_context*>& iocs, redis_target target,
                                         core::bucket_policy policy, const core::clock& clock,
                                         std::chrono::milliseconds timeout, store_fallback fallback,
                                         rate_limiter& local, std::size_t max_denials)
    : policy_(policy),
      clock_(clock),
      timeout_(timeout),
      fallback_(fallback),
      local_(local),
      max_denials_per_shard_(std::max<std::size_t>(1, max_denials / kShards)) {
    for (auto* ioc : iocs) clients_.emplace_back(ioc, std::make_unique<redis_client>(*ioc, target, script()));
}

shared_rate_limiter::~shared_rate_limiter() = default;

void shared_rate_limiter::start() {
    for (auto& [ioc, c] : clients_) c->start();
}

bool shared_rate_limiter::healthy() const {
    for (const auto& [ioc, c] : clients_)
        if (!c->ready()) return false;
    return !clients_.empty();
}

std::uint64_t shared_rate_limiter::reconnects() const {
    std::uint64_t n = 0;
    for (const auto& [ioc, c] : clients_) n += c->reconnects();
    return n;
}

redis_client& shared_rate_limiter::client_for(asio::io_context& ioc) {
    for (auto& [c_ioc, c] : clients_)
        if (c_ioc == &ioc) return *c;
    return *clients_.front().second;  // not an I/O thread's context: tests only
}

std::optional<core::bucket_state> shared_rate_limiter::remembered_denial(const core::ip_address& client,
                                                                         core::steady_time now) {
    auto& s = denials_[core::ip_address_hash{}(client) % kShards];
    std::lock_guard lock(s.mu);
    const auto it = s.denied.find(client);
    if (it == s.denied.end()) return std::nullopt;
    const double elapsed = std::chrono::duration<double>(now - it->second.at).count();
    const double tokens =
        std::min(policy_.capacity, it->second.tokens + std::max(0.0, elapsed) * policy_.refill_per_second);
    if (tokens + kEpsilon >= 1.0) {  // a token is due: Redis decides again
        s.denied.erase(it);
        return std::nullopt;
    }
    return core::state_of(policy_, tokens, false);
}

void shared_rate_limiter::remember_denial(const core::ip_address& client, double tokens, core::steady_time now) {
    auto& s = denials_[core::ip_address_hash{}(client) % kShards];
    std::lock_guard lock(s.mu);
    if (s.denied.size() >= max_denials_per_shard_) {
        // Full: drop the denials that have run out; when none has, remember this one not at all
        // (Redis still decides it: nothing is lost but a shortcut).
        for (auto it = s.denied.begin(); it != s.denied.end();) {
            const double elapsed = std::chrono::duration<double>(now - it->second.at).count();
            if (it->second.tokens + elapsed * policy_.refill_per_second + kEpsilon >= 1.0)
                it = s.denied.erase(it);
            else
                ++it;
        }
        if (s.denied.size() >= max_denials_per_shard_) return;
    }
    s.denied[client] = {tokens, now};
}

rate_decision shared_rate_limiter::fall_back(const core::ip_address& client) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    switch (fallback_) {
        case store_fallback::local:
            return {local_.acquire(client), false};
        case store_fallback::open:
            return {core::state_of(policy_, policy_.capacity, true), false};
        case store_fallback::closed:
            break;
    }
    return {core::state_of(policy_, 0, false), true};
}

asio::awaitable<rate_decision> shared_rate_limiter::acquire(const core::ip_address& client) {
    const auto now = clock_.now();
    if (auto d = remembered_denial(client, now)) {
        cached_denials_.fetch_add(1, std::memory_order_relaxed);
        co_return rate_decision{*d, false};
    }
    auto executor = co_await asio::this_coro::executor;
    auto& ioc = asio::query(executor, asio::execution::context);
    auto& redis = client_for(static_cast<asio::io_context&>(ioc));

    // The reply wakes the waiting coroutine by cancelling its timer; the timer alone means the
    // store took too long. Both run on this thread.
    struct waiting {
        explicit waiting(asio::any_io_executor ex) : timer(std::move(ex)) {}
        asio::steady_timer timer;
        bool answered = false, allowed = false;
        double tokens = 0;
    };
    auto w = std::make_shared<waiting>(executor);
    w->timer.expires_after(timeout_);
    const bool sent =
        redis.eval("userapi:rl:" + client.to_string(), {number(policy_.capacity), number(policy_.refill_per_second)},
                   [w](const redisReply* r) {
                       if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                           r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_STRING) {
                           w->answered = true;
                           w->allowed = r->element[0]->integer == 1;
                           w->tokens = std::strtod(r->element[1]->str, nullptr);
                       }
                       w->timer.cancel();
                   });
    if (!sent) co_return fall_back(client);
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!w->answered) co_return fall_back(client);
    if (!w->allowed) remember_denial(client, w->tokens, now);
    co_return rate_decision{core::state_of(policy_, w->tokens, w->allowed), false};
}

}  // namespace userapi::http
