// The seam between a connection and what answers its requests: the session reads and writes
// bytes, a request_handler turns one parsed request into one response.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "userapi/core/ip_address.hpp"
#include "userapi/core/shared_bytes.hpp"
#include "userapi/http/beast_types.hpp"

namespace userapi::http {

// What the server as a whole is doing; atomics shared by the listener, sessions and handler.
struct server_state {
    std::atomic<bool> draining{false};
    std::atomic<std::size_t> active_requests{0};  // read and not yet answered
    std::atomic<std::size_t> connections{0};      // open now
};

// One request as the session hands it over: the TCP peer, the request's id (the one its
// response and every log line it causes carry), and the arena its response's fields go in
// (null: the heap). The arena lives until the response is written.
struct request_info {
    const core::ip_address& peer;
    std::string_view request_id;
    std::pmr::memory_resource* memory = nullptr;
    std::string_view peer_text = {};  // the peer as text, made once per connection (for the log)
    bool body_unread = false;         // refused on its header (refuses_unread): no body was read
};

class request_handler {
public:
    virtual ~request_handler() = default;

    // The response to a request read in full. Should not throw (a session that sees an
    // exception closes the connection and logs it). `info` is taken by value, so the coroutine
    // holds its own copy; `req` and what `info` points to must outlive the coroutine.
    virtual boost::asio::awaitable<response> handle(const request& req, request_info info) = 0;

    // What answer_at_once() found: nothing (call handle()), a message for the session to send,
    // or a response already rendered: its whole head in the session's buffer, and its body.
    struct at_once {
        enum kind_type { none, message, rendered } kind = none;
        std::optional<response> res;  // message
        core::shared_bytes body;      // rendered: sent after the head, except for HEAD
    };

    // The answer when it is at hand without waiting for anything (a cached user, health,
    // metrics): the session then skips handle(). `head` is the session's buffer, for a
    // rendered answer (only for a keep-alive HTTP/1.1 request while not draining). Must not
    // have acted on the request (charged a token, counted a hit) when it returns none.
    virtual at_once answer_at_once(const request&, const request_info&, std::string& /*head*/) { return {}; }

    // Called once a request's header is complete and a body follows: true when the answer is
    // known to be a refusal that needs no body (its credentials, contract 9.4). The session then
    // reads no body, calls handle() with `body_unread` set, and closes the connection after.
    // Must not act on the request (charge a token, count anything).
    virtual bool refuses_unread(const request& /*header*/) { return false; }

    // The answer to a request the session refuses before it is read in full (400, 413, 431):
    // `req` holds whatever header was parsed, maybe none. The connection closes after it.
    virtual boost::asio::awaitable<response> reject(const request& req, unsigned status, std::string_view detail,
                                                    request_info info) = 0;
};

// The request's own X-Request-Id when it is 1-128 printable ASCII characters, else a new one.
std::string request_id(const request& req);

}  // namespace userapi::http
