// A small blocking HTTP/1.1 client over POSIX sockets, for integration tests: it sends exactly
// the bytes a test gives it and parses responses strictly. Only ever connects to loopback.
// Every read has a timeout, so a broken server fails a test instead of hanging it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace userapi::testing {

struct http_response {
    int status = 0;
    std::string version;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The first value of header `name` (case-insensitive), or "".
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const;
};

using header_list = std::vector<std::pair<std::string, std::string>>;

// The bytes of one request; a non-empty body gets a Content-Length.
std::string raw_request(std::string_view method, std::string_view target, const header_list& headers = {},
                        std::string_view body = "", std::string_view version = "HTTP/1.1");

class connection {
public:
    // `source`: a loopback address to connect from ("127.0.0.2"), so one test can be several clients.
    explicit connection(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                        const char* source = nullptr);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Returns false if the peer has closed or reset the connection.
    bool send(std::string_view bytes);
    // Throws std::runtime_error on close, reset, timeout or a malformed response.
    http_response read_response(bool head = false);
    // True when a response (or a close) is waiting to be read within `timeout`.
    bool readable(std::chrono::milliseconds timeout);
    // Sends up to `total` bytes of `piece` repeated, stopping early once the server answers or
    // closes: how a test streams a flood the server should refuse before it ends.
    std::size_t stream(std::string_view piece, std::size_t total);
    // True if the server closes (FIN or reset) within `timeout` without sending anything more.
    bool closed_by_peer(std::chrono::milliseconds timeout);
    void close();

private:
    bool fill();  // reads more into buf_; false on close/error/timeout
    int fd_ = -1;
    std::string buf_;
};

// One request on a fresh connection.
http_response request(std::uint16_t port, std::string_view method, std::string_view target,
                      const header_list& headers = {}, std::string_view body = "");

}  // namespace userapi::testing
