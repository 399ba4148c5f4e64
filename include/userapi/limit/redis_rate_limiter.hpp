// Token buckets in Redis, shared by every instance that uses the same Redis: a client whose
// requests are spread over any number of instances gets what one instance would give it.
//
// Each decision is one atomic Lua script run with the Redis server's clock (TIME), so
// instances whose clocks differ still agree; a bucket's key expires once it is full again, so
// Redis holds only clients that are using their allowance. Each I/O thread has its own
// connection: a decision is sent from the request's own thread and its reply comes back there,
// with every decision in flight on that connection pipelined.
//
// A refused client's next token time only moves forward (nobody can take a token from an
// empty bucket), so a denial is remembered here until then and answered without asking Redis.
//
// When Redis does not answer within the timeout, or is down, the fallback decides: this
// instance's own bucket (local), admit (open), or 503 (closed); each such decision is counted.
// A connection whose oldest decision went unanswered past its deadline is stalled: Redis
// answers in order, so what is sent now would only wait behind it. Until a reply comes, its
// decisions go to the fallback at once, costing no wait at all, and the limiter is not
// healthy (/readyz); after kReplaceStalledAfter without one, the connection is replaced.
//
// Each connection keeps its decisions in flight in a queue, in the order they were sent, with
// one timer for the oldest deadline: no timer and no allocation of its own per request.
//
// Thread-safe: a connection and its queue are per I/O thread (used only on theirs), the
// denial cache is sharded under mutexes, counters are atomics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>

#include "userapi/core/clock.hpp"
#include "userapi/core/ip_address.hpp"
#include "userapi/core/token_bucket.hpp"
#include "userapi/limit/identity_rate_limiter.hpp"
#include "userapi/limit/local_rate_limiter.hpp"
#include "userapi/limit/redis_client.hpp"

namespace userapi::limit {

enum class store_fallback { local, open, closed };

struct rate_decision {
    core::bucket_state state;
    bool unavailable = false;  // the store failed and the fallback is "closed": answer 503
};

class redis_rate_limiter {
public:
    // One connection per io_context in `iocs` (the I/O threads'). `local` is the fallback's
    // bucket table, `identities` the fallback's for authenticated identities (null: none).
    redis_rate_limiter(const std::vector<boost::asio::io_context*>& iocs, redis_target target,
                       core::bucket_policy policy, const core::clock& clock, std::chrono::milliseconds timeout,
                       store_fallback fallback, local_rate_limiter& local, std::size_t max_denials,
                       bool pipelining = true, bool denial_cache = true, identity_rate_limiter* identities = nullptr);
    ~redis_rate_limiter();

    void start();
    // Decides for `client` on the calling coroutine's io_context (one of `iocs`).
    boost::asio::awaitable<rate_decision> acquire(const core::ip_address& client);
    // The same for an authenticated identity's bucket ("userapi:rl:id:<identity>") under its
    // own policy. Its refusals are not remembered here: Redis decides each one.
    boost::asio::awaitable<rate_decision> acquire(std::string_view identity, const core::bucket_policy& policy);

    // Every connection is up with its script loaded.
    bool healthy() const;
    std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
    std::uint64_t reconnects() const;
    std::uint64_t denials_answered_here() const { return cached_denials_.load(std::memory_order_relaxed); }

    // The Lua script: KEYS the buckets, ARGV capacity and refill per second for all of them
    // or, after those two, a pair per key; returns {allowed (0/1), tokens left (a string)} per key.
    static const char* script();

private:
    struct connection;
    struct pending;
    rate_decision fall_back(const pending& p);
    template <class Fill>  // Fill(pending&) names the bucket
    boost::asio::awaitable<rate_decision> decide(Fill fill, core::steady_time now);
    connection& connection_for(boost::asio::io_context& ioc);
    // Decisions sent as one script run: consecutive sequence numbers.
    struct batch {
        std::uint64_t first;
        std::size_t count;
    };
    void send(connection& c, batch b, bool inline_script);
    void finish(connection& c, pending& p, const rate_decision& d);
    void trim(connection& c);
    void arm_deadline(connection& c);
    void stall(connection& c);
    static void on_reply(const redisReply* reply, void* privdata);

    struct denial {
        double tokens;  // left after the refusal
        core::steady_time at;
    };
    struct shard {
        std::mutex mu;
        std::unordered_map<core::ip_address, denial, core::ip_address_hash> denied;  // guarded by mu
    };
    static constexpr std::size_t kShards = 16;
    static constexpr std::chrono::seconds kReplaceStalledAfter{2};
    std::optional<core::bucket_state> remembered_denial(const core::ip_address& client, core::steady_time now);
    void remember_denial(const core::ip_address& client, double tokens, core::steady_time now);

    std::vector<std::unique_ptr<connection>> connections_;  // one per I/O thread; the vector is read-only
    const core::bucket_policy policy_;
    const core::clock& clock_;
    const std::chrono::milliseconds timeout_;
    const store_fallback fallback_;
    local_rate_limiter& local_;
    identity_rate_limiter* identities_;
    const std::size_t max_denials_per_shard_;
    const bool denial_cache_;
    const std::vector<std::string> script_args_;  // capacity and refill per second, formatted once
    std::array<shard, kShards> denials_;
    std::atomic<std::uint64_t> errors_{0}, cached_denials_{0};
};

}  // namespace userapi::limit
