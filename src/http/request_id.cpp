#include <atomic>
#include <cstdint>
#include <random>

#include "userapi/http/request_handler.hpp"

namespace userapi::http {

// Echo the client's id when it is 1-128 printable ASCII characters; else make one.
std::string request_id(const request& req) {
    const auto it = req.find("X-Request-Id");
    if (it != req.end()) {
        const auto v = it->value();
        bool ok = !v.empty() && v.size() <= 128;
        for (unsigned char c : v) ok = ok && c >= 0x20 && c < 0x7f;
        if (ok) return std::string(v);
    }
    // "<process tag><thread tag>-<counter>": unique without a shared counter, and short
    // enough (15 characters for the first 16 million of a thread) to need no allocation.
    static const std::uint32_t process_tag = std::random_device{}() & 0xffffff;
    static std::atomic<std::uint32_t> threads{0};
    thread_local const std::uint32_t tag = process_tag << 8 | (threads.fetch_add(1) & 0xff);
    thread_local std::uint64_t counter = 0;
    static constexpr char hex[] = "0123456789abcdef";
    char buf[32];
    char* p = buf;
    for (int shift = 28; shift >= 0; shift -= 4) *p++ = hex[(tag >> shift) & 15];
    *p++ = '-';
    char digits[16];
    int n = 0;
    for (std::uint64_t c = counter++; n == 0 || c; c >>= 4) digits[n++] = hex[c & 15];
    while (n) *p++ = digits[--n];
    return std::string(buf, p);
}

}  // namespace userapi::http
