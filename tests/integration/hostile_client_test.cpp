// What a hostile client found, each a regression test over real sockets: a crash from one
// trailer, memory grown without bound by chunk extensions and trailers, and the protocol's
// edges (Host, the header section's size, methods, targets, body declarations, tokens).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "support/http_client.hpp"
#include "support/refusal.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using namespace userapi::testing;
using nlohmann::json;

namespace {

const std::string chunked_get = "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
const std::string post_head = "POST /users HTTP/1.1\r\nHost: x\r\n";

std::string user_json(const std::string& tag) {
    return R"({"name":"Hostile )" + tag + R"(","email":")" + tag + R"(@example.org"})";
}

std::string post(const std::string& headers, const std::string& body) {
    return post_head + headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

class Hostile : public ::testing::Test {
protected:
    static userapi::config::settings settings() {
        auto s = test_settings();
        s.header_timeout_ms = 5000;
        return s;
    }
    test_server srv{settings()};
    std::uint16_t port = srv.port();

    http_response exchange(const std::string& bytes) {
        connection c(port);
        c.send(bytes);
        return c.read_response();
    }
    // Sends `bytes`; expects a problem with `status`, the connection closed, others served.
    void expect_refused(const std::string& bytes, int status) { userapi::testing::expect_refused(port, bytes, status); }
};

}  // namespace

// Was an abort: Beast threw while storing a trailer field of 64 KiB, and the process died.
TEST_F(Hostile, HugeTrailerFieldIs431NotACrash) {
    expect_refused(chunked_get + "0\r\nX: " + std::string(65534, 'a') + "\r\n\r\n", 431);
    expect_refused(chunked_get + "0\r\n" + std::string(70000, 'n') + ": v\r\n\r\n", 431);
}

// The trailer section is bounded like the header section, however small its fields, and
// whether it arrives byte by byte or at once.
TEST_F(Hostile, TrailerSectionOver8KiBIs431) {
    std::string fields;
    for (int i = 0; i < 2000; ++i) fields += "a:b\r\n";
    expect_refused(chunked_get + "0\r\n" + fields + "\r\n", 431);
    connection c(port);
    c.send(chunked_get + "0\r\n");
    EXPECT_LT(c.stream(fields, 256u << 20), 256u << 20) << "the flood was buffered to its end";
    EXPECT_EQ(c.read_response().status, 431);
}

// Trailers are read and dropped: a trailer never poses as a header.
TEST_F(Hostile, TrailersNeverActAsHeaders) {
    const auto body = user_json("trailer");
    char size[16];
    std::snprintf(size, sizeof size, "%zx", body.size());
    auto r = exchange(post_head + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + size +
                      "\r\n" + body + "\r\n0\r\nContent-Type: text/plain\r\nX-Request-Id: from-trailer\r\n\r\n");
    EXPECT_EQ(r.status, 201) << r.body;
    EXPECT_NE(r.header("X-Request-Id"), "from-trailer");
}

// Was 200 MB of RSS before the 400: an extension is refused once past its limit, and many
// small extensions count together.
TEST_F(Hostile, ChunkExtensionsAreBounded) {
    expect_refused(chunked_get + "1;" + std::string(4000, 'e'), 400);
    connection c(port);
    c.send(chunked_get + "1;");
    EXPECT_LT(c.stream(std::string(64 * 1024, 'e'), 256u << 20), 256u << 20) << "the extension was buffered";
    EXPECT_EQ(c.read_response().status, 400);
    std::string many;
    for (int i = 0; i < 40; ++i) many += "1;ext=" + std::string(40, 'v') + "\r\nx\r\n";
    expect_refused(chunked_get + many + "0\r\n\r\n", 400);
    auto ok = exchange(chunked_get + "1;a=b\r\nx\r\n0;c\r\n\r\n");
    EXPECT_EQ(ok.status, 200) << "a small extension is fine";
}

// Was a wait until the timeout: a bare LF after the last chunk is refused at once, like the
// other bare-LF forms.
TEST_F(Hostile, BareLineFeedAfterLastChunkIs400AtOnce) {
    const auto start = std::chrono::steady_clock::now();
    expect_refused(chunked_get + "0\r\n\n", 400);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "waited for the header timeout";
    expect_refused(chunked_get + "0\r\nX: y\n\r\n", 400);
}

// The 8 KiB limit covers the whole header section: request line, fields and line ends.
TEST_F(Hostile, HeaderSectionCountsEveryByte) {
    std::string fields;
    for (int i = 0; i < 2450; ++i) fields += "a:b\r\n";
    expect_refused("GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n", 431);
    expect_refused(
        "GET /" + std::string(4096, 'u') + " HTTP/1.1\r\nHost: x\r\nX: " + std::string(4200, 'v') + "\r\n\r\n", 431);
    // Exactly 8192 bytes passes; one more does not.
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX: ";
    const std::string exact = head + std::string(8192 - head.size() - 4, 'v') + "\r\n\r\n";
    ASSERT_EQ(exact.size(), 8192u);
    EXPECT_EQ(exchange(exact).status, 200);
    expect_refused(head + std::string(8192 - head.size() - 3, 'v') + "\r\n\r\n", 431);
}

// RFC 9112 section 3.2: one Host field with a valid value in HTTP/1.1.
TEST_F(Hostile, HostMustBeOneValidField) {
    expect_refused("GET /healthz HTTP/1.1\r\n\r\n", 400);
    expect_refused("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_refused("GET /healthz HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nhOST: a\r\n\r\n", 400);  // apart, any case
    expect_refused("GET /healthz HTTP/1.1\r\nHost: a, b\r\n\r\n", 400);
    expect_refused("GET /healthz HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400);
    expect_refused("GET /healthz HTTP/1.1\r\nHost: \r\n\r\n", 400);
    for (auto host : {"example.org", "example.org:8080", "127.0.0.1:80", "[::1]:8080", "xn--bcher-kva.example"})
        EXPECT_EQ(exchange("GET /healthz HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n").status, 200) << host;
    EXPECT_EQ(exchange("GET /healthz HTTP/1.0\r\n\r\n").status, 200) << "HTTP/1.0 needs no Host";
}

// 405 is for a known method a resource does not serve; any other method is 501.
TEST_F(Hostile, UnknownMethodsAre501) {
    for (auto m : {"FOO", "get", "PROPFIND"}) {
        auto r = exchange(std::string(m) + " /users/1 HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(r.status, 501) << m;
        EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    }
    EXPECT_EQ(exchange("PUT /users/1 HTTP/1.1\r\nHost: x\r\n\r\n").status, 405);
}

// Only origin-form and absolute-form targets are served.
TEST_F(Hostile, TargetMustBeAnAbsolutePath) {
    expect_refused("GET users/1 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_refused("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 400);
    expect_refused("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    EXPECT_EQ(exchange("GET http://x/users/1 HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
}

// A body's declarations: one Content-Type, JSON in UTF-8, no content coding.
TEST_F(Hostile, BodyDeclarations) {
    EXPECT_EQ(exchange(post("Content-Type: application/json\r\nContent-Type: text/plain\r\n", user_json("t1"))).status,
              400);
    EXPECT_EQ(exchange(post("Content-Type: application/json\r\nContent-Encoding: gzip\r\n", user_json("t2"))).status,
              415);
    EXPECT_EQ(exchange(post("Content-Type: application/json; charset=latin1\r\n", user_json("t3"))).status, 415);
    EXPECT_EQ(exchange(post("Content-Type: application/json;charset=\"UTF-8\"\r\n", user_json("t4"))).status, 201);
    EXPECT_EQ(
        exchange(post("Content-Type: application/json\r\nContent-Encoding: identity\r\n", user_json("t5"))).status,
        201);
    EXPECT_EQ(exchange(post("Content-Type: application/json; charset\r\n", user_json("t6"))).status, 415);
}

// A name must show something, and must not reorder the text around it.
TEST_F(Hostile, InvisibleOrBidiNamesAre400) {
    for (auto name : {"\\u200b\\u200b", "\\u00a0", "abc\\u202efdp", "x\\u2066y"}) {
        auto r = exchange(post("Content-Type: application/json\r\n",
                               std::string(R"({"name":")") + name + R"(","email":"inv@example.org"})"));
        EXPECT_EQ(r.status, 400) << name;
        EXPECT_NE(json::parse(r.body)["detail"].get<std::string>().find("name"), std::string::npos);
    }
}

// RFC 6750: "Bearer" then one or more spaces; two Authorization fields are ambiguous.
TEST(HostileAdmin, AuthorizationRules) {
    auto cfg = test_settings();
    cfg.admin_token = "s3cret";
    test_server srv(cfg);
    auto del = [&](const header_list& h) { return request(srv.port(), "DELETE", "/cache", h).status; };
    EXPECT_EQ(del({{"Authorization", "Bearer    s3cret"}}), 200);
    EXPECT_EQ(del({{"Authorization", "bearer s3cret"}}), 200);
    EXPECT_EQ(del({{"Authorization", "Bearer s3cret"}, {"Authorization", "Bearer wrong"}}), 400);
    EXPECT_EQ(del({{"Authorization", "Bearer wrong"}, {"Authorization", "Bearer s3cret"}}), 400);
    EXPECT_EQ(del({{"Authorization", "Bearer"}}), 401);
    EXPECT_EQ(del({{"Authorization", "Bearer "}}), 401);
    EXPECT_EQ(del({{"Authorization", "Bearer wrong"}}), 403);
}

// Was held for the idle timeout (30 s): a connection that never sends a byte has the header
// timeout from accept.
TEST(HostileLimits, SilentConnectionIsDroppedAfterTheHeaderTimeout) {
    auto cfg = test_settings();
    cfg.header_timeout_ms = 300;
    cfg.idle_timeout_ms = 30000;
    test_server srv(cfg);
    const auto start = std::chrono::steady_clock::now();
    connection silent(srv.port());
    EXPECT_TRUE(silent.closed_by_peer(5s));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

// Was 503 for everyone once 100 silent connections from one address filled the server: one
// client's connections are bounded, and other clients still get in.
TEST(HostileLimits, ConnectionsPerClientAreBounded) {
    auto cfg = test_settings();
    cfg.max_connections_per_client = 4;
    test_server srv(cfg);
    std::vector<std::unique_ptr<connection>> held;
    for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<connection>(srv.port()));
    auto healthz_from = [&](const char* source) {
        connection c(srv.port(), 5s, source);
        c.send(raw_request("GET", "/healthz"));
        return c.read_response();
    };
    auto refused = healthz_from("127.0.0.1");
    EXPECT_EQ(refused.status, 503);
    EXPECT_EQ(refused.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(refused.header("Retry-After"), "1");
    EXPECT_EQ(healthz_from("127.0.0.2").status, 200) << "another client is not refused";
    held.pop_back();
    EXPECT_TRUE(eventually([&] { return healthz_from("127.0.0.1").status == 200; })) << "a closed slot is free again";
}

// Was a fresh burst for a refused client: with the bucket table full, a flood of new
// X-Forwarded-For clients must not push a refused client's empty bucket out.
TEST(HostileLimits, FloodOfNewClientsDoesNotRefillARefusedOne) {
    auto cfg = test_settings();
    cfg.rate_limit_enabled = true;
    cfg.trusted_proxies = {"127.0.0.1/32"};
    cfg.max_clients = 1000;
    test_server srv(cfg);
    connection c(srv.port());
    auto get_as = [&](const std::string& client) {
        c.send(raw_request("GET", "/users/1", {{"X-Forwarded-For", client}}));
        return c.read_response().status;
    };
    std::vector<int> first;
    for (int i = 0; i < 6; ++i) first.push_back(get_as("198.51.100.7"));
    EXPECT_EQ(first, (std::vector<int>{200, 200, 200, 200, 200, 429}));
    for (int i = 0; i < 5000; ++i) get_as("10.9." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(get_as("198.51.100.7"), 429) << "request " << i << " after the flood";
}
