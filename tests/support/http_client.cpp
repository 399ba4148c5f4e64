#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace userapi::testing {
namespace {

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

}  // namespace

std::string http_response::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequal(k, name)) return v;
    return "";
}

bool http_response::has_header(std::string_view name) const {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequal(h.first, name); });
}

std::string raw_request(std::string_view method, std::string_view target, const header_list& headers,
                        std::string_view body, std::string_view version) {
    std::string out =
        std::string(method) + " " + std::string(target) + " " + std::string(version) + "\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    if (!body.empty()) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

connection::connection(std::uint16_t port, std::chrono::milliseconds timeout, const char* source) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (source) {
        sockaddr_in from{};
        from.sin_family = AF_INET;
        if (::inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
            ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
            ::close(fd_);
            throw std::runtime_error(std::string("cannot bind to ") + source);
        }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd_);
        throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
    }
}

connection::~connection() { close(); }

void connection::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool connection::send(std::string_view bytes) {
    while (!bytes.empty()) {
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool connection::readable(std::chrono::milliseconds timeout) {
    if (!buf_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

std::size_t connection::stream(std::string_view piece, std::size_t total) {
    std::size_t sent = 0;
    while (sent < total && !readable(std::chrono::milliseconds(0))) {
        if (!send(piece)) break;
        sent += piece.size();
    }
    return sent;
}

bool connection::fill() {
    char tmp[16384];
    const auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
}

http_response connection::read_response(bool head) {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
        if (!fill()) throw std::runtime_error("connection closed or timed out before a response head");
    const std::string head_text = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    http_response r;
    std::size_t pos = head_text.find("\r\n");
    const std::string status_line = head_text.substr(0, pos);
    if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0)
        throw std::runtime_error("bad status line: " + status_line);
    r.version = status_line.substr(0, 8);
    r.status = std::stoi(status_line.substr(9, 3));
    while (pos != std::string::npos) {
        const auto next = head_text.find("\r\n", pos + 2);
        const auto line = head_text.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        const auto colon = line.find(':');
        if (colon == std::string::npos) throw std::runtime_error("bad header line: " + line);
        auto value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        r.headers.emplace_back(line.substr(0, colon), value);
        pos = next;
    }
    if (head || r.status == 204 || r.status == 304 || r.status / 100 == 1) return r;
    if (r.has_header("Content-Length")) {
        const auto len = std::stoul(r.header("Content-Length"));
        while (buf_.size() < len)
            if (!fill()) throw std::runtime_error("connection closed before the whole body");
        r.body = buf_.substr(0, len);
        buf_.erase(0, len);
    } else {
        while (fill()) {
        }
        r.body.swap(buf_);
    }
    return r;
}

bool connection::closed_by_peer(std::chrono::milliseconds timeout) {
    if (!buf_.empty()) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c;
    const auto n = ::recv(fd_, &c, 1, 0);
    return n <= 0;
}

http_response request(std::uint16_t port, std::string_view method, std::string_view target, const header_list& headers,
                      std::string_view body) {
    connection c(port);
    c.send(raw_request(method, target, headers, body));
    return c.read_response(method == "HEAD");
}

}  // namespace userapi::testing
