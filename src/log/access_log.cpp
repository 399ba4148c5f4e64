#include "userapi/log/access_log.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace userapi::log {
namespace {

constexpr std::size_t kHandOff = 32 * 1024;  // a buffer this full is written without waiting

// One thread's lines, waiting to be written.
struct thread_buffer {
    std::mutex mu;
    std::string lines;  // guarded by mu
};

struct writer_state {
    std::mutex mu;
    std::condition_variable wake;
    std::vector<std::shared_ptr<thread_buffer>> buffers;  // guarded by mu; every thread that logged
    bool running = false;                                 // guarded by mu
    std::atomic<bool> accepting{false};                   // running, for the loggers: no lock to read
    bool urgent = false;                                  // guarded by mu: a buffer is full
    std::thread thread;
    int fd = 2;
    std::function<void(std::string_view)> sink;
    std::mutex output_mu;  // one write at a time, so lines never interleave
};

writer_state& writer() {
    static writer_state w;
    return w;
}

void write_out(std::string_view text) {
    auto& w = writer();
    std::lock_guard lock(w.output_mu);
    if (w.sink) {
        w.sink(text);
        return;
    }
    while (!text.empty()) {
        const auto n = ::write(w.fd, text.data(), text.size());
        if (n <= 0) return;  // nowhere to write: drop rather than block the process
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Takes every buffer's lines and writes them, one write per buffer.
void drain_all() {
    auto& w = writer();
    std::vector<std::shared_ptr<thread_buffer>> buffers;
    {
        std::lock_guard lock(w.mu);
        buffers = w.buffers;
    }
    std::string out;
    for (auto& b : buffers) {
        {
            std::lock_guard lock(b->mu);
            out.swap(b->lines);  // the thread gets our emptied string back, capacity and all
        }
        if (!out.empty()) write_out(out);
        out.clear();
        std::lock_guard lock(b->mu);
        if (b->lines.empty()) b->lines.swap(out);
    }
}

thread_buffer& my_buffer() {
    thread_local std::shared_ptr<thread_buffer> mine = [] {
        auto b = std::make_shared<thread_buffer>();
        b->lines.reserve(kHandOff * 2);
        auto& w = writer();
        std::lock_guard lock(w.mu);
        w.buffers.push_back(b);
        return b;
    }();
    return *mine;
}

// The time as the log pattern writes it, formatted once per second per thread: text
// "2026-11-26T10:04:31.255" (local time, milliseconds), JSON "2026-11-26T09:57:36.949588Z" (UTC,
// microseconds).
void append_time(std::string& out, bool json) {
    thread_local std::time_t cached_second = -1;
    thread_local bool cached_json = false;
    thread_local char prefix[32];
    const auto now = std::chrono::system_clock::now();
    const auto since = now.time_since_epoch();
    const auto second = std::chrono::duration_cast<std::chrono::seconds>(since);
    const std::time_t t = static_cast<std::time_t>(second.count());
    if (t != cached_second || json != cached_json) {
        std::tm tm{};
        if (json)
            gmtime_r(&t, &tm);
        else
            localtime_r(&t, &tm);
        std::strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_second = t;
        cached_json = json;
    }
    out += prefix;
    // The fraction by hand: snprintf per line costs more than the rest of the line.
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since - second).count();
    char frac[8];
    int digits = json ? 6 : 3;
    if (!json) micros /= 1000;
    for (int i = digits; i > 0; --i) {
        frac[i] = static_cast<char>('0' + micros % 10);
        micros /= 10;
    }
    frac[0] = '.';
    out.append(frac, static_cast<std::size_t>(digits) + 1);
    if (json) out += 'Z';
}

}  // namespace

void start_access_log(int fd, std::function<void(std::string_view)> sink) {
    auto& w = writer();
    std::lock_guard lock(w.mu);
    if (w.running) return;
    w.fd = fd;
    w.sink = std::move(sink);
    w.running = true;
    w.accepting = true;
    w.thread = std::thread([] {
        auto& w = writer();
        for (;;) {
            {
                std::unique_lock lock(w.mu);
                w.wake.wait_for(lock, std::chrono::milliseconds(100), [&w] { return w.urgent || !w.running; });
                w.urgent = false;
                if (!w.running) return;
            }
            drain_all();
        }
    });
}

void flush_access_log() { drain_all(); }

void stop_access_log() {
    auto& w = writer();
    std::thread t;
    {
        std::lock_guard lock(w.mu);
        if (!w.running) return;
        w.running = false;
        w.accepting = false;
        t = std::move(w.thread);
    }
    w.wake.notify_all();
    if (t.joinable()) t.join();
    drain_all();
    std::lock_guard lock(w.mu);
    w.sink = nullptr;
}

void access_event(std::initializer_list<log_field> fields) {
    auto& w = writer();
    if (!w.accepting.load(std::memory_order_acquire)) {
        log_event(spdlog::level::info, "access", fields);
        return;
    }
    const bool json = json_format();
    auto& b = my_buffer();
    std::size_t size;
    {
        std::lock_guard lock(b.mu);
        auto& out = b.lines;
        if (json) {
            out += "{\"time\":\"";
            append_time(out, true);
            out += "\",\"level\":\"info\",";
            append_event(out, "access", fields);
            out += "}\n";
        } else {
            append_time(out, false);
            out += " info ";
            append_event(out, "access", fields);
            out += '\n';
        }
        size = out.size();
    }
    if (size >= kHandOff) {
        {
            std::lock_guard lock(w.mu);
            w.urgent = true;
        }
        w.wake.notify_one();
    }
}

}  // namespace userapi::log
