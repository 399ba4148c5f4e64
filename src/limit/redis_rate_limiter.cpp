#include "userapi/limit/redis_rate_limiter.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "userapi/log/log.hpp"

namespace userapi::limit {

namespace asio = boost::asio;

namespace {

constexpr double kEpsilon = 1e-9;

std::string number(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

}  // namespace

// A batch of decisions, one per key, in order (a client twice in a batch is decided twice, the
// second seeing the first). Per key, one string "tokens timestamp", expiring when the bucket is
// full again. Redis runs the whole script atomically, with its own clock.
const char* redis_rate_limiter::script() {
    return R"lua(
local cap0, rate0 = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_key = #ARGV > 2
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local out = {}
for i, key in ipairs(KEYS) do
  local cap, rate = cap0, rate0
  if per_key then
    cap, rate = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  end
  local tokens, ts = cap, now
  local v = redis.call('GET', key)
  if v then
    local sp = string.find(v, ' ', 1, true)
    tokens, ts = tonumber(string.sub(v, 1, sp - 1)), tonumber(string.sub(v, sp + 1))
    if now > ts then
      tokens, ts = math.min(cap, tokens + (now - ts) * rate), now
    end
  end
  local allowed = 0
  if tokens + 1e-9 >= 1 then
    tokens, allowed = math.max(0, tokens - 1), 1
  end
  local full_ms = math.ceil((cap - tokens) / rate * 1000)
  if full_ms < 1 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, tokens .. ' ' .. ts, 'PX', full_ms)
  end
  out[2 * i - 1] = allowed
  out[2 * i] = tostring(tokens)
end
return out
)lua";
}

// A decision in flight: who asked, until when the answer is useful, and the coroutine waiting.
struct redis_rate_limiter::pending {
    // Constructed in place: Boost 1.81's any_completion_handler move-assignment recurses forever.
    explicit pending(boost::asio::any_completion_handler<void(rate_decision)> r) : resume(std::move(r)) {}
    boost::asio::any_completion_handler<void(rate_decision)> resume;  // empty once answered
    core::ip_address client;
    core::steady_time sent;
    core::steady_time deadline;
    char key[64];
    std::size_t key_size = 0;
    // An identity's decision: its name, its own policy (formatted for the script), its key.
    bool identity = false;
    std::string name;
    core::bucket_policy policy;
    std::string long_key, capacity_arg, refill_arg;
    std::string_view key_view() const {
        return identity ? std::string_view(long_key) : std::string_view(key, key_size);
    }
};

// One I/O thread's connection and its decisions in flight, used only on that thread.
struct redis_rate_limiter::connection {
    connection(redis_rate_limiter& o, asio::io_context& i, const redis_target& t, bool pipelining)
        : owner(o), ioc(i), deadlines(i), stalled_for(i), redis(i, t, script(), on_reply, pipelining ? 0 : 1) {}
    redis_rate_limiter& owner;
    asio::io_context& ioc;
    std::deque<pending> in_flight;  // by sequence number: front() is first_seq
    std::uint64_t first_seq = 0;
    std::deque<batch> reply_order;       // what Redis answers next, in order
    batch unsent{0, 0};                  // decisions of this event-loop turn, sent together
    std::vector<std::string_view> keys;  // reused for each batch
    std::vector<std::string> args;       // reused for batches that hold an identity's decision
    asio::steady_timer deadlines;        // for the oldest unanswered decision
    bool deadline_armed = false;
    // A decision's deadline passed with its reply still owed; cleared by the next reply. Written
    // on this connection's thread, read by healthy() from any.
    std::atomic<bool> stalled{false};
    asio::steady_timer stalled_for;  // replaces the connection after kReplaceStalledAfter
    redis_client redis;              // last: destroyed first, its final callbacks still find the queue
};

redis_rate_limiter::redis_rate_limiter(const std::vector<asio::io_context*>& iocs, redis_target target,
                                       core::bucket_policy policy, const core::clock& clock,
                                       std::chrono::milliseconds timeout, store_fallback fallback,
                                       local_rate_limiter& local, std::size_t max_denials, bool pipelining,
                                       bool denial_cache, identity_rate_limiter* identities)
    : policy_(policy),
      clock_(clock),
      timeout_(timeout),
      fallback_(fallback),
      local_(local),
      identities_(identities),
      max_denials_per_shard_(std::max<std::size_t>(1, max_denials / kShards)),
      denial_cache_(denial_cache),
      script_args_{number(policy.capacity), number(policy.refill_per_second)} {
    for (auto* ioc : iocs) connections_.push_back(std::make_unique<connection>(*this, *ioc, target, pipelining));
}

redis_rate_limiter::~redis_rate_limiter() = default;

void redis_rate_limiter::start() {
    for (auto& c : connections_) c->redis.start();
}

bool redis_rate_limiter::healthy() const {
    for (const auto& c : connections_)
        if (!c->redis.ready() || c->stalled.load(std::memory_order_relaxed)) return false;
    return !connections_.empty();
}

std::uint64_t redis_rate_limiter::reconnects() const {
    std::uint64_t n = 0;
    for (const auto& c : connections_) n += c->redis.reconnects();
    return n;
}

redis_rate_limiter::connection& redis_rate_limiter::connection_for(asio::io_context& ioc) {
    for (auto& c : connections_)
        if (&c->ioc == &ioc) return *c;
    return *connections_.front();  // not an I/O thread's context: tests only
}

std::optional<core::bucket_state> redis_rate_limiter::remembered_denial(const core::ip_address& client,
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

void redis_rate_limiter::remember_denial(const core::ip_address& client, double tokens, core::steady_time now) {
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

rate_decision redis_rate_limiter::fall_back(const pending& p) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    const auto& policy = p.identity ? p.policy : policy_;
    switch (fallback_) {
        case store_fallback::local:
            if (!p.identity) return {local_.acquire(p.client), false};
            if (identities_) return {identities_->acquire(p.name, p.policy), false};
            [[fallthrough]];
        case store_fallback::open:
            return {core::state_of(policy, policy.capacity, true), false};
        case store_fallback::closed:
            break;
    }
    return {core::state_of(policy, 0, false), true};
}

asio::awaitable<rate_decision> redis_rate_limiter::acquire(const core::ip_address& client) {
    const auto now = clock_.now();
    if (auto d = denial_cache_ ? remembered_denial(client, now) : std::nullopt) {
        cached_denials_.fetch_add(1, std::memory_order_relaxed);
        co_return rate_decision{*d, false};
    }
    co_return co_await decide(
        [&client](pending& p) {
            p.client = client;
            const auto text = client.to_string();
            p.key_size = static_cast<std::size_t>(std::snprintf(p.key, sizeof p.key, "userapi:rl:%s", text.c_str()));
        },
        now);
}

asio::awaitable<rate_decision> redis_rate_limiter::acquire(std::string_view identity,
                                                           const core::bucket_policy& policy) {
    co_return co_await decide(
        [identity, &policy](pending& p) {
            p.identity = true;
            p.name = identity;
            p.policy = policy;
            p.long_key = "userapi:rl:id:";
            p.long_key += identity;
            p.capacity_arg = number(policy.capacity);
            p.refill_arg = number(policy.refill_per_second);
        },
        clock_.now());
}

template <class Fill>
asio::awaitable<rate_decision> redis_rate_limiter::decide(Fill fill, core::steady_time now) {
    auto executor = co_await asio::this_coro::executor;
    auto& c = connection_for(static_cast<asio::io_context&>(asio::query(executor, asio::execution::context)));
    if (!c.redis.ready() || c.stalled.load(std::memory_order_relaxed)) {
        pending p(nullptr);
        fill(p);
        co_return fall_back(p);
    }
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(rate_decision)>(
        [this, &c, &fill, now](auto resume) {
            const auto seq = c.first_seq + c.in_flight.size();
            auto& p = c.in_flight.emplace_back(std::move(resume));
            fill(p);
            p.sent = now;
            p.deadline = now + timeout_;
            // Every decision asked for in this turn of the event loop goes out as one script run.
            if (c.unsent.count++ == 0) {
                c.unsent.first = seq;
                asio::post(c.ioc, [this, &c] {
                    const auto b = c.unsent;
                    c.unsent = {0, 0};
                    send(c, b, false);
                });
            }
            arm_deadline(c);
        },
        asio::use_awaitable);
}

void redis_rate_limiter::send(connection& c, batch b, bool inline_script) {
    c.keys.clear();
    bool per_key = false;
    for (std::size_t i = 0; i < b.count; ++i) {
        const auto& p = c.in_flight[b.first + i - c.first_seq];
        c.keys.emplace_back(p.key_view());
        per_key = per_key || p.identity;
    }
    if (per_key) {  // identities have policies of their own: a pair of arguments per key
        c.args.resize(2 + 2 * b.count);
        c.args[0] = script_args_[0];
        c.args[1] = script_args_[1];
        for (std::size_t i = 0; i < b.count; ++i) {
            const auto& p = c.in_flight[b.first + i - c.first_seq];
            c.args[2 + 2 * i] = p.identity ? p.capacity_arg : script_args_[0];
            c.args[3 + 2 * i] = p.identity ? p.refill_arg : script_args_[1];
        }
    }
    c.reply_order.push_back(b);
    if (!c.redis.eval(c.keys, per_key ? c.args : script_args_, &c, inline_script)) {
        c.reply_order.pop_back();
        for (std::size_t i = 0; i < b.count; ++i) {
            auto& p = c.in_flight[b.first + i - c.first_seq];
            finish(c, p, fall_back(p));
        }
        trim(c);
    }
}

// Answers `p` (once) on its connection's thread, outside whatever called this.
void redis_rate_limiter::finish(connection& c, pending& p, const rate_decision& d) {
    if (!p.resume) return;
    auto resume = std::move(p.resume);
    p.resume = nullptr;
    asio::post(c.ioc, [resume = std::move(resume), d]() mutable { std::move(resume)(d); });
}

// Drops answered decisions from the front, unless Redis still owes them a reply (the reply
// must find its entry) or they are yet to be sent.
void redis_rate_limiter::trim(connection& c) {
    auto owed = [&c](std::uint64_t seq) {
        if (c.unsent.count && seq >= c.unsent.first) return true;
        return std::any_of(c.reply_order.begin(), c.reply_order.end(),
                           [seq](const batch& b) { return seq >= b.first && seq < b.first + b.count; });
    };
    while (!c.in_flight.empty() && !c.in_flight.front().resume && !owed(c.first_seq)) {
        c.in_flight.pop_front();
        ++c.first_seq;
    }
}

// Redis answers in the order it was asked: the reply is for reply_order's front batch, two
// elements per decision.
void redis_rate_limiter::on_reply(const redisReply* r, void* privdata) {
    auto& c = *static_cast<connection*>(privdata);
    auto& self = c.owner;
    if (c.stalled.load(std::memory_order_relaxed) && c.stalled.exchange(false, std::memory_order_relaxed))
        c.stalled_for.cancel();  // Redis answers again
    if (c.reply_order.empty()) return;
    const auto b = c.reply_order.front();
    c.reply_order.pop_front();
    if (r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).substr(0, 8) == "NOSCRIPT") {
        self.send(c, b, true);  // the server lost its scripts: run it inline (and load it again)
        return;
    }
    const bool whole = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 * b.count;
    for (std::size_t i = 0; i < b.count; ++i) {
        auto& p = c.in_flight[b.first + i - c.first_seq];
        if (!p.resume) continue;  // already answered by the fallback after its deadline
        const redisReply* allowed = whole ? r->element[2 * i] : nullptr;
        const redisReply* tokens = whole ? r->element[2 * i + 1] : nullptr;
        if (allowed && tokens && allowed->type == REDIS_REPLY_INTEGER && tokens->type == REDIS_REPLY_STRING) {
            const double left = std::strtod(tokens->str, nullptr);
            const bool ok = allowed->integer == 1;
            if (!ok && self.denial_cache_ && !p.identity) self.remember_denial(p.client, left, p.sent);
            self.finish(c, p, {core::state_of(p.identity ? p.policy : self.policy_, left, ok), false});
        } else {
            self.finish(c, p, self.fall_back(p));
        }
    }
    self.trim(c);
}

// One timer per connection, for the oldest decision still unanswered: past its deadline the
// fallback answers it (and every later one that is due).
void redis_rate_limiter::arm_deadline(connection& c) {
    if (c.deadline_armed) return;
    for (auto& p : c.in_flight) {
        if (!p.resume) continue;
        c.deadline_armed = true;
        c.deadlines.expires_at(asio::steady_timer::clock_type::now() +
                               std::chrono::duration_cast<asio::steady_timer::duration>(p.deadline - clock_.now()));
        c.deadlines.async_wait([this, &c](boost::system::error_code ec) {
            c.deadline_armed = false;
            if (ec) return;
            const auto now = clock_.now();
            for (auto& q : c.in_flight)
                if (q.resume && q.deadline <= now) {
                    finish(c, q, fall_back(q));
                    stall(c);  // its reply is still owed
                }
            trim(c);
            arm_deadline(c);
        });
        return;
    }
}

void redis_rate_limiter::stall(connection& c) {
    if (c.stalled.exchange(true, std::memory_order_relaxed)) return;
    log::log_event(spdlog::level::warn, "the rate-limit store does not answer; the fallback decides until it does",
                   {{"timeout_ms", std::to_string(timeout_.count()), true}});
    c.stalled_for.expires_after(kReplaceStalledAfter);
    c.stalled_for.async_wait([&c](boost::system::error_code ec) {
        if (!ec && c.stalled.exchange(false, std::memory_order_relaxed))
            c.redis.reconnect();  // not ready until it answers
    });
}

}  // namespace userapi::limit
