// One connection to Redis on one io_context: hiredis's asynchronous client, driven by Asio
// (a small adapter turns hiredis's read/write interest into waits on the socket). Commands go
// out as they are issued and replies come back in order, so many requests in flight share one
// connection: pipelined, never one blocking round trip each.
//
// It loads one Lua script at connect and runs it by its SHA1 (EVALSHA); a NOSCRIPT answer (the
// server lost its scripts) runs it inline once and loads it again. When the connection is lost
// it reconnects by itself, backing off from 100 ms to 5 s. TCP keepalives are on, so a dead
// peer is found even on an idle connection; a server that holds its replies (a stopped
// process) is left by reconnect(), which the owner calls.
//
// Not thread-safe: every call happens on the io_context's thread (an I/O thread). ready() may
// be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "userapi/core/redis_uri.hpp"

struct redisAsyncContext;
struct redisReply;

namespace userapi::limit {

using core::redis_target;

class redis_client {
public:
    // A reply (null when the connection failed before one came) and the caller's pointer, on
    // this io_context's thread. hiredis frees the reply when this returns.
    using raw_callback = void (*)(const redisReply* reply, void* privdata);

    // `max_in_flight` 0: every command goes out at once (pipelined); N: at most N await replies,
    // the others wait here.
    // `on_eval` receives every eval()'s reply with the privdata eval() was given.
    redis_client(boost::asio::io_context& ioc, redis_target target, std::string script, raw_callback on_eval,
                 std::size_t max_in_flight = 0);
    ~redis_client();
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    void start();
    // Connected with the script loaded.
    bool ready() const { return ready_.load(std::memory_order_relaxed); }
    // Runs the script with KEYS = keys and ARGV = args: by its SHA1, or its text when
    // `inline_script` (after a NOSCRIPT answer, which also loads it again). false (and
    // `on_eval` is not called) when not ready.
    bool eval(const std::vector<std::string_view>& keys, const std::vector<std::string>& args, void* privdata,
              bool inline_script = false);
    std::uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
    // Drops the connection (commands awaiting replies hear null) and connects again after the
    // backoff.
    void reconnect();

private:
    struct events;
    using hiredis_callback = void (*)(redisAsyncContext*, void*, void*);
    struct held_command {
        std::vector<std::string> argv;
        hiredis_callback fn;
        void* privdata;
    };
    void connect();
    void lost();
    void load_script();
    void command(int argc, const char** argv, const size_t* lens, hiredis_callback fn, void* privdata);
    void command(std::vector<std::string> argv, std::function<void(const redisReply*)> done);
    void replied();  // a reply came: one slot less in flight, maybe send a held command
    static void on_connect(const redisAsyncContext* c, int status);
    static void on_disconnect(const redisAsyncContext* c, int status);
    static void on_eval_reply(redisAsyncContext* c, void* reply, void* privdata);
    static void on_function_reply(redisAsyncContext* c, void* reply, void* privdata);

    boost::asio::io_context& ioc_;
    redis_target target_;
    std::string script_;
    raw_callback on_eval_;
    std::string sha_;
    redisAsyncContext* ctx_ = nullptr;  // owned by hiredis once connected; freed by it on loss
    boost::asio::steady_timer retry_;
    std::chrono::milliseconds backoff_{100};
    bool connected_before_ = false;
    std::size_t max_in_flight_;
    std::size_t in_flight_ = 0;
    std::deque<held_command> held_;  // waiting for a slot (max_in_flight_ reached)
    std::vector<const char*> argv_;  // reused by eval(): no allocation per command once grown
    std::vector<size_t> lens_;
    bool stopping_ = false;
    std::atomic<bool> ready_{false};
    std::atomic<std::uint64_t> reconnects_{0};
};

}  // namespace userapi::limit
