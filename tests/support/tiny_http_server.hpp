// A tiny HTTP/1.1 server on 127.0.0.1 for tests that fetch a URL (a JWK Set): one thread,
// one request per connection, the answer (status and body) settable at any time, every
// request counted. Stops and joins in its destructor.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace userapi::testing {

class tiny_http_server {
public:
    tiny_http_server() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
            throw std::runtime_error("tiny_http_server: cannot listen");
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~tiny_http_server() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string url(const std::string& path = "/jwks.json") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    void answer(int status, std::string body) {
        std::lock_guard lock(mu_);
        status_ = status;
        body_ = std::move(body);
    }
    int requests() const { return requests_.load(); }

private:
    void run() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            std::string in;
            char buf[4096];
            while (in.find("\r\n\r\n") == std::string::npos) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 2000) <= 0) break;
                const auto n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
            }
            ++requests_;
            std::string out;
            {
                std::lock_guard lock(mu_);
                out = "HTTP/1.1 " + std::to_string(status_) +
                      " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body_.size()) +
                      "\r\nConnection: close\r\n\r\n" + body_;
            }
            for (std::size_t off = 0; off < out.size();) {
                const auto n = ::write(c, out.data() + off, out.size() - off);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            ::close(c);
        }
    }

    int fd_ = -1;
    unsigned short port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> requests_{0};
    std::mutex mu_;
    int status_ = 200;  // guarded by mu_
    std::string body_;  // guarded by mu_
    std::thread thread_;
};

}  // namespace userapi::testing
