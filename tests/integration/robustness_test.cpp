// Malformed, oversized, ambiguous and slow requests: each is answered or closed, and other
// clients keep being served.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "support/http_client.hpp"
#include "support/refusal.hpp"
#include "support/test_server.hpp"

using namespace std::chrono_literals;
using namespace userapi::testing;
using nlohmann::json;

namespace {

class Robustness : public ::testing::Test {
protected:
    static userapi::config::settings settings() {
        auto s = test_settings();
        s.header_timeout_ms = 500;
        s.idle_timeout_ms = 700;
        return s;
    }
    test_server srv{settings()};
    std::uint16_t port = srv.port();

    // Sends `bytes` on a fresh connection; expects a problem with `status`, then a close.
    void expect_refused(const std::string& bytes, int status) { userapi::testing::expect_refused(port, bytes, status); }
    void expect_others_served() { EXPECT_EQ(request(port, "GET", "/healthz").status, 200); }
};

const std::string post_head = "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
const std::string valid_user = R"({"name":"Chunk","email":"chunk@example.org"})";

std::string hex(std::size_t n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return buf;
}

}  // namespace

TEST_F(Robustness, GarbageIs400) { expect_refused("\x16\x03\x01 hello garbage\r\n\r\n", 400); }

TEST_F(Robustness, BadRequestLineIs400) { expect_refused("GET\r\n\r\n", 400); }

TEST_F(Robustness, OversizeHeaderIs431) {
    expect_refused("GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n", 431);
}

// Framing a proxy could read differently is refused, connection closed (contract section 4).
TEST_F(Robustness, ContentLengthWithTransferEncodingIs400) {
    expect_refused(post_head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
    expect_refused(post_head + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400);
    expect_refused(post_head + "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello", 400);
}

TEST_F(Robustness, DifferingContentLengthsAre400) {
    expect_refused(post_head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
}

TEST_F(Robustness, ChunkedInHttp10Is400) {
    expect_refused(
        "POST /users HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
}

TEST_F(Robustness, TransferEncodingNotEndingInChunkedIs400) {
    expect_refused(post_head + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400);
    expect_refused(post_head + "Transfer-Encoding: gzip\r\n\r\n", 400);
}

TEST_F(Robustness, OversizeBodyIs413) {
    const std::string body(20 * 1024, ' ');
    expect_refused(post_head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body, 413);
    const std::string chunked_big = hex(body.size()) + "\r\n" + body + "\r\n0\r\n\r\n";
    expect_refused(post_head + "Transfer-Encoding: chunked\r\n\r\n" + chunked_big, 413);
}

// A well-formed chunked body is accepted.
TEST_F(Robustness, ChunkedBodyAccepted) {
    connection c(port);
    c.send(post_head + "Transfer-Encoding: chunked\r\n\r\n" + hex(valid_user.size()) + "\r\n" + valid_user +
           "\r\n0\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 201);
}

// Expect: 100-continue gets an interim 100 before the client sends its body.
TEST_F(Robustness, ExpectContinue) {
    connection c(port);
    c.send(post_head + "Expect: 100-continue\r\nContent-Length: " + std::to_string(valid_user.size()) + "\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 100);
    c.send(valid_user);
    EXPECT_EQ(c.read_response().status, 201);
}

// A request whose head never completes is dropped after the header timeout, and other
// clients are served meanwhile.
TEST_F(Robustness, HalfSentHeaderIsDropped) {
    connection slow(port);
    slow.send("GET /users/1 HTTP/1.1\r\nHost: x\r\n");
    expect_others_served();
    EXPECT_TRUE(slow.closed_by_peer(5s));
}

// A body that stops half-way is dropped after the header timeout.
TEST_F(Robustness, StalledBodyIsDropped) {
    connection slow(port);
    slow.send(post_head + "Content-Length: 100\r\n\r\n{\"name\":");
    expect_others_served();
    EXPECT_TRUE(slow.closed_by_peer(5s));
}

// An idle keep-alive connection is closed after the idle timeout.
TEST_F(Robustness, IdleConnectionIsClosed) {
    connection c(port);
    c.send(raw_request("GET", "/healthz"));
    EXPECT_EQ(c.read_response().status, 200);
    EXPECT_TRUE(c.closed_by_peer(5s));
}

// Many bad clients at once do not stop a good one.
TEST_F(Robustness, BadClientsDoNotHurtOthers) {
    std::vector<std::thread> bad;
    for (int i = 0; i < 8; ++i)
        bad.emplace_back([this, i] {
            for (int k = 0; k < 20; ++k) {
                try {
                    connection c(port);
                    c.send(i % 2 ? std::string("\x00\x01\x02garbage\r\n\r\n", 14)
                                 : post_head + "Content-Length: 3\r\n\r\n{{{");
                    c.read_response();
                } catch (const std::exception&) {
                }
            }
        });
    for (int k = 0; k < 20; ++k) EXPECT_EQ(request(port, "GET", "/users/1").status, 200);
    for (auto& t : bad) t.join();
    expect_others_served();
}

// A request refused before it reaches a route still costs the client a token, says so in the
// RateLimit headers, and turns into 429 once the bucket is empty: oversize bodies are not a
// free way to keep the server busy.
TEST(RobustnessLimited, RefusedRequestsToLimitedRoutesCostATokenAndSaySo) {
    auto cfg = test_settings();
    cfg.rate_limit_enabled = true;
    cfg.rate_limit_capacity = 2;
    test_server srv(cfg);
    const std::string body(20 * 1024, ' ');
    const std::string big = post_head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    std::vector<int> statuses;
    for (int i = 0; i < 3; ++i) {
        connection c(srv.port());
        c.send(big);
        auto r = c.read_response();
        statuses.push_back(r.status);
        EXPECT_EQ(r.header("RateLimit-Limit"), "2");
        EXPECT_EQ(r.header("RateLimit-Remaining"), std::to_string(i < 2 ? 1 - i : 0));
        EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    }
    EXPECT_EQ(statuses, (std::vector<int>{413, 413, 429}));
    EXPECT_EQ(request(srv.port(), "GET", "/healthz").status, 200) << "unlimited routes stay open";
}
