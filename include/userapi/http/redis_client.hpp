// One connection to Redis on one io_context: hiredis's asynchronous client, driven by Asio
// (a small adapter turns hiredis's read/write interest into waits on the socket). Commands go
// out as they are issued and replies come back in order, so many requests in flight share one
// connection: pipelined, never one blocking round trip each.
//
// It loads one Lua script at connect and runs it by its SHA1 (EVALSHA); a NOSCRIPT answer (the
// server lost its scripts) runs it inline once and loads it again. When the connection is lost
// it reconnects by itself, backing off from 100 ms to 5 s.
//
// Not thread-safe: every call happens on the io_context's thread (an I/O thread). ready() may
// be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
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

namespace userapi::http {

using core::redis_target;

class redis_client {
public:
    // The reply, or null when the connection failed before one came.
    using callback = std::function<void(const redisReply*)>;

    redis_client(boost::asio::io_context& ioc, redis_target target, std::string script);
    ~redis_client();
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    void start();
    // Connected with the script loaded.
    bool ready() const { return ready_.load(std::memory_order_relaxed); }
    // Runs the script with KEYS[1] = key and ARGV = args. false (and `done` is not called) when
    // not ready.
    bool eval(const std::string& key, const std::vector<std::string>& args, callback done);
    std::uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }

private:
    struct events;
    void connect();
    void lost();
    void load_script();
    void command(const std::vector<std::string>& argv, callback done);
    static void on_connect(const redisAsyncContext* c, int status);
    static void on_disconnect(const redisAsyncContext* c, int status);
    static void on_reply(redisAsyncContext* c, void* reply, void* privdata);

    boost::asio::io_context& ioc_;
    redis_target target_;
    std::string script_;
    std::string sha_;
    redisAsyncContext* ctx_ = nullptr;  // owned by hiredis once connected; freed by it on loss
    boost::asio::steady_timer retry_;
    std::chrono::milliseconds backoff_{100};
    bool connected_before_ = false;
    bool stopping_ = false;
    std::atomic<bool> ready_{false};
    std::atomic<std::uint64_t> reconnects_{0};
};

}  // namespace userapi::http
