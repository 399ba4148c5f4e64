// One GET of a JWK Set URL with libcurl (http:// or https://, the system's CA store), bounded
// in time and size. Blocking: called only from the authenticator's own thread, never from an
// I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <variant>

namespace userapi::auth {

struct fetched {
    std::string body;
};

// The body of a 200 answer, or an error in words (no secret: the URL's user-info and query are
// never repeated).
// `abort`, when set, ends a transfer in progress (a server stopping).
std::variant<fetched, std::string> http_get(const std::string& url, std::chrono::milliseconds timeout,
                                            const std::atomic<bool>* abort = nullptr, std::size_t max_bytes = 1 << 20);

// scheme://host[:port]/path of `url`: what logs may say of it.
std::string url_for_log(const std::string& url);

bool is_http_url(const std::string& s);

}  // namespace userapi::auth
