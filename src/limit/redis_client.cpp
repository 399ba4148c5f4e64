#include "userapi/limit/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include "userapi/log/log.hpp"

namespace userapi::limit {

namespace asio = boost::asio;

// hiredis's read/write interest as one-shot waits on its socket. hiredis owns the descriptor:
// it is released, never closed, here. Kept alive by the waits in flight, so a wait that
// completes after hiredis cleaned up finds `ctx` null and does nothing.
struct redis_client::events : std::enable_shared_from_this<events> {
    events(asio::io_context& ioc, redisAsyncContext* c) : ctx(c), socket(ioc, c->c.fd) {}

    void arm(bool write) {
        bool& busy = write ? writing : reading;
        if (!ctx || busy || !(write ? want_write : want_read)) return;
        busy = true;
        socket.async_wait(
            write ? asio::posix::stream_descriptor::wait_write : asio::posix::stream_descriptor::wait_read,
            [self = shared_from_this(), write](boost::system::error_code ec) {
                (write ? self->writing : self->reading) = false;
                bool& want = write ? self->want_write : self->want_read;
                if (ec || !self->ctx || !want) return;
                want = false;  // one-shot: hiredis asks again when it needs to
                if (write)
                    redisAsyncHandleWrite(self->ctx);
                else
                    redisAsyncHandleRead(self->ctx);
            });
    }
    static events& of(void* p) { return **static_cast<std::shared_ptr<events>*>(p); }
    static void add_read(void* p) {
        of(p).want_read = true;
        of(p).arm(false);
    }
    static void del_read(void* p) { of(p).want_read = false; }
    static void add_write(void* p) {
        of(p).want_write = true;
        of(p).arm(true);
    }
    static void del_write(void* p) { of(p).want_write = false; }
    static void cleanup(void* p) {
        auto* holder = static_cast<std::shared_ptr<events>*>(p);
        auto& e = **holder;
        e.ctx = nullptr;
        e.want_read = e.want_write = false;
        e.socket.release();  // cancels the waits; hiredis closes the descriptor itself
        delete holder;
    }

    redisAsyncContext* ctx;
    asio::posix::stream_descriptor socket;
    bool want_read = false, want_write = false, reading = false, writing = false;
};

redis_client::redis_client(asio::io_context& ioc, redis_target target, std::string script, raw_callback on_eval,
                           std::size_t max_in_flight)
    : ioc_(ioc),
      target_(std::move(target)),
      script_(std::move(script)),
      on_eval_(on_eval),
      retry_(ioc),
      max_in_flight_(max_in_flight) {}

redis_client::~redis_client() {
    stopping_ = true;
    ready_ = false;
    if (ctx_) redisAsyncFree(ctx_);  // pending callbacks hear null; no reconnect while stopping
}

void redis_client::start() {
    asio::post(ioc_, [this] { connect(); });
}

void redis_client::connect() {
    if (stopping_) return;
    ctx_ = redisAsyncConnect(target_.host.c_str(), target_.port);
    if (!ctx_ || ctx_->err) {
        if (ctx_) redisAsyncFree(ctx_);
        ctx_ = nullptr;
        lost();
        return;
    }
    ctx_->data = this;
    redisEnableKeepAlive(&ctx_->c);
    auto* holder = new std::shared_ptr<events>(std::make_shared<events>(ioc_, ctx_));
    ctx_->ev.data = holder;
    ctx_->ev.addRead = events::add_read;
    ctx_->ev.delRead = events::del_read;
    ctx_->ev.addWrite = events::add_write;
    ctx_->ev.delWrite = events::del_write;
    ctx_->ev.cleanup = events::cleanup;
    redisAsyncSetConnectCallback(ctx_, on_connect);
    redisAsyncSetDisconnectCallback(ctx_, on_disconnect);
    if (target_.db != 0) command({"SELECT", std::to_string(target_.db)}, [](const redisReply*) {});
    load_script();  // queued; goes out once connected
}

void redis_client::on_connect(const redisAsyncContext* c, int status) {
    auto* self = static_cast<redis_client*>(c->data);
    if (status == REDIS_OK) return;
    self->ctx_ = nullptr;  // hiredis frees a context whose connect failed
    self->lost();
}

void redis_client::on_disconnect(const redisAsyncContext* c, int) {
    auto* self = static_cast<redis_client*>(c->data);
    self->ctx_ = nullptr;  // freed by hiredis after this returns
    self->lost();
}

void redis_client::reconnect() {
    auto* c = ctx_;
    if (!c) return;
    redisAsyncFree(c);  // runs the pending callbacks, and on_disconnect if it was connected
    if (ctx_ == c) {    // it was still connecting: no disconnect callback
        ctx_ = nullptr;
        lost();
    }
}

void redis_client::lost() {
    const bool was_ready = ready_.exchange(false);
    if (stopping_) return;
    if (was_ready)
        log::log_event(spdlog::level::warn, "lost the rate-limit store; reconnecting",
                       {{"store", target_.host + ":" + std::to_string(target_.port)}});
    retry_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
    retry_.async_wait([this](boost::system::error_code ec) {
        if (!ec) connect();
    });
}

void redis_client::load_script() {
    command({"SCRIPT", "LOAD", script_}, [this](const redisReply* r) {
        if (!r || r->type != REDIS_REPLY_STRING) return;  // a lost connection reconnects and loads again
        sha_.assign(r->str, r->len);
        if (connected_before_) reconnects_.fetch_add(1, std::memory_order_relaxed);
        connected_before_ = true;
        backoff_ = std::chrono::milliseconds(100);
        ready_ = true;
    });
}

void redis_client::command(int argc, const char** argv, const size_t* lens, hiredis_callback fn, void* privdata) {
    if (max_in_flight_ && in_flight_ >= max_in_flight_) {
        held_.push_back({{}, fn, privdata});
        for (int i = 0; i < argc; ++i) held_.back().argv.emplace_back(argv[i], lens[i]);
        return;
    }
    if (ctx_ && redisAsyncCommandArgv(ctx_, fn, privdata, argc, argv, lens) == REDIS_OK) {
        ++in_flight_;
        return;
    }
    // Only while the connection is going: hiredis kept nothing, so answer now.
    if (fn == on_eval_reply)
        on_eval_(nullptr, privdata);
    else
        fn(nullptr, nullptr, privdata);
}

void redis_client::replied() {
    --in_flight_;
    if (held_.empty() || in_flight_ >= max_in_flight_) return;
    auto next = std::move(held_.front());
    held_.pop_front();
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : next.argv) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    command(static_cast<int>(argv.size()), argv.data(), lens.data(), next.fn, next.privdata);
}

// Every eval's reply goes to the one callback the owner gave: no allocation per command.
void redis_client::on_eval_reply(redisAsyncContext* c, void* reply, void* privdata) {
    auto* self = static_cast<redis_client*>(c ? c->data : nullptr);
    if (!self) return;
    self->on_eval_(static_cast<const redisReply*>(reply), privdata);
    self->replied();
}

void redis_client::on_function_reply(redisAsyncContext* c, void* reply, void* privdata) {
    using function = std::function<void(const redisReply*)>;
    std::unique_ptr<function> f(static_cast<function*>(privdata));
    (*f)(static_cast<const redisReply*>(reply));
    if (auto* self = static_cast<redis_client*>(c ? c->data : nullptr)) self->replied();
}

// The rare commands (SELECT, SCRIPT LOAD), each with a callback of its own.
void redis_client::command(std::vector<std::string> argv, std::function<void(const redisReply*)> done) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    command(static_cast<int>(args.size()), args.data(), lens.data(), on_function_reply,
            new std::function<void(const redisReply*)>(std::move(done)));
}

bool redis_client::eval(const std::vector<std::string_view>& keys, const std::vector<std::string>& args, void* privdata,
                        bool inline_script) {
    if (!ready_ || !ctx_) return false;
    if (inline_script) load_script();
    const std::string& body = inline_script ? script_ : sha_;
    const auto key_count = std::to_string(keys.size());
    argv_.clear();
    lens_.clear();
    auto add = [this](std::string_view a) {
        argv_.push_back(a.data());
        lens_.push_back(a.size());
    };
    add(inline_script ? "EVAL" : "EVALSHA");
    add(body);
    add(key_count);
    for (auto k : keys) add(k);
    for (const auto& a : args) add(a);
    command(static_cast<int>(argv_.size()), argv_.data(), lens_.data(), on_eval_reply, privdata);
    return true;
}

}  // namespace userapi::limit
