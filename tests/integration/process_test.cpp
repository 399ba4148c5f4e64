// The userapi binary itself: command line, the listening line, and the SIGTERM drain.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <regex>

#include "support/http_client.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using namespace userapi::testing;

TEST(Process, HelpVersionAndBadOptions) {
    EXPECT_EQ(process({"--help"}).wait_exit(5s), 0);
    EXPECT_EQ(process({"--version"}).wait_exit(5s), 0);
    EXPECT_EQ(process({"--no-such-option"}).wait_exit(5s), 2);
    EXPECT_EQ(process({"--port", "70000"}).wait_exit(5s), 2);
}

// SIGTERM while a request waits on the DB: that request still gets its 200, new
// connections are refused, and the process exits 0.
TEST(Process, SigtermDrainsInFlightRequests) {
    process p({"--port", "0", "--db-latency-ms", "1000", "--no-rate-limit", "--log-level", "warn"});
    const auto port = listening_port(p);
    ASSERT_NE(port, 0);
    connection c(port);
    ASSERT_TRUE(c.send(raw_request("GET", "/users/1")));
    // The request is in flight once the DB queue holds it.
    for (int i = 0;
         i < 200 && request(port, "GET", "/cache-status").body.find("\"queue_depth\":1") == std::string::npos; ++i)
        std::this_thread::sleep_for(5ms);
    p.signal(SIGTERM);
    auto r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Connection"), "close") << "keep-alive ends after the current response while draining";
    EXPECT_EQ(p.wait_exit(5s), 0);
    EXPECT_THROW(connection{port}, std::runtime_error) << "nothing listens after the drain";
}

// SIGINT on an idle server: exit 0 promptly.
TEST(Process, SigintExitsZero) {
    process p({"--port", "0", "--log-level", "off"});
    ASSERT_NE(listening_port(p), 0);
    p.signal(SIGINT);
    EXPECT_EQ(p.wait_exit(5s), 0);
}

namespace {

std::string temp_data_path(const char* name) {
    const auto dir =
        std::filesystem::path(::testing::TempDir()) / ("userapi-proc-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir);
    return (dir / "users.db").string();
}

}  // namespace

// A 201 is only sent once the row is durable: SIGKILL right after it loses nothing, and a
// restart neither duplicates the seeded users nor reuses the id.
TEST(Process, CreatedUserSurvivesSigkill) {
    const auto data = temp_data_path("sigkill");
    const std::vector<std::string> args = {"--port",          "0",           "--data", data, "--db-latency-ms", "0",
                                           "--no-rate-limit", "--log-level", "warn"};
    std::string created;
    {
        process p(args);
        const auto port = listening_port(p);
        ASSERT_NE(port, 0);
        auto r = request(port, "POST", "/users", {{"Content-Type", "application/json"}},
                         R"({"name":"Durable Dora","email":"dora@example.org"})");
        ASSERT_EQ(r.status, 201);
        EXPECT_EQ(r.header("Location"), "/users/4");
        created = r.body;
        p.signal(SIGKILL);
        EXPECT_EQ(p.wait_exit(5s), 128 + SIGKILL);
    }
    process p(args);
    const auto port = listening_port(p);
    ASSERT_NE(port, 0);
    auto r = request(port, "GET", "/users/4");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, created);
    EXPECT_EQ(request(port, "GET", "/users/5").status, 404) << "seeding ran again";
    auto next = request(port, "POST", "/users", {{"Content-Type", "application/json"}},
                        R"({"name":"Next","email":"next@example.org"})");
    EXPECT_EQ(next.header("Location"), "/users/5");
    EXPECT_EQ(request(port, "POST", "/users", {{"Content-Type", "application/json"}},
                      R"({"name":"Again","email":"DORA@example.org"})")
                  .status,
              409);
}

// An unusable --data file stops the start with exit 2, and the file is left as it was.
TEST(Process, UnusableDataFileExits2) {
    const auto data = temp_data_path("notsqlite");
    std::filesystem::create_directories(std::filesystem::path(data).parent_path());
    std::ofstream(data) << "not a database";
    EXPECT_EQ(process({"--port", "0", "--data", data}).wait_exit(5s), 2);
    std::ifstream in(data);
    std::string content;
    std::getline(in, content);
    EXPECT_EQ(content, "not a database");
    EXPECT_EQ(process({"--port", "0", "--data", "/proc/userapi-cannot-be-here/users.db"}).wait_exit(5s), 2);
}

// Was an abort (Asio's exception escaped main): a port already in use is one clear line on
// stderr and exit 1.
TEST(Process, PortInUseExits1WithOneLine) {
    struct held_socket {  // closed however the test ends
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        ~held_socket() {
            if (fd >= 0) ::close(fd);
        }
    } socket_holder;
    const int held = socket_holder.fd;
    ASSERT_GE(held, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(held, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(held, 1), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(held, reinterpret_cast<sockaddr*>(&a), &len), 0);
    const auto port = std::to_string(ntohs(a.sin_port));
    const auto err = temp_data_path("port-in-use.err");
    std::filesystem::create_directories(std::filesystem::path(err).parent_path());
    EXPECT_EQ(process({"--port", port, "--data", ":memory:", "--log-level", "off"}, err).wait_exit(5s), 1);
    std::ifstream in(err);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("userapi: cannot listen on 127.0.0.1 port " + port + ": Address already in use"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("terminate"), std::string::npos) << text;
}

// Was an abort and then 1.2 GB: floods of trailers and of chunk extensions are refused once
// past their limits, the process's memory barely moves, and it keeps serving.
TEST(Process, FloodsOfTrailersAndExtensionsDoNotGrowMemory) {
    process p({"--port", "0", "--no-rate-limit", "--log-level", "warn", "--data", ":memory:"});
    const auto port = listening_port(p);
    ASSERT_NE(port, 0);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(request(port, "GET", "/users/1").status, 200);
    const long before = resident_kib(p.pid());
    ASSERT_GT(before, 0);
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string fields;
    for (int i = 0; i < 4096; ++i) fields += "a:b\r\n";
    {
        connection c(port);
        c.send(head + "0\r\n");
        c.stream(fields, 20u << 20);
        EXPECT_EQ(c.read_response().status, 431);
    }
    {
        connection c(port);
        c.send(head + "1;");
        c.stream(std::string(64 * 1024, 'e'), 30u << 20);
        EXPECT_EQ(c.read_response().status, 400);
    }
    const long after = resident_kib(p.pid());
    EXPECT_LT(after - before, 16 * 1024) << "RSS grew from " << before << " KiB to " << after << " KiB";
    EXPECT_EQ(request(port, "GET", "/healthz").status, 200);
}

// An empty --admin-token would open DELETE /cache: exit 2, even with a token in the environment.
TEST(Process, EmptyAdminTokenExits2) {
    ::setenv("USERAPI_ADMIN_TOKEN", "from-env", 1);
    EXPECT_EQ(process({"--port", "0", "--admin-token", ""}).wait_exit(5s), 2);
    ::unsetenv("USERAPI_ADMIN_TOKEN");
}

// The access log is written in batches off the I/O threads: a SIGTERM drain still writes the
// line of every request answered, before the process exits.
TEST(Process, SigtermLosesNoAccessLine) {
    const auto log_path =
        std::filesystem::path(::testing::TempDir()) / ("userapi-access-" + std::to_string(::getpid()));
    process p({"--port", "0", "--no-rate-limit", "--log-level", "info", "--data", ":memory:", "--threads", "2"},
              log_path.string());
    const auto port = listening_port(p);
    ASSERT_NE(port, 0);
    constexpr int kRequests = 3000;
    connection c(port);
    for (int sent = 0; sent < kRequests; sent += 100) {
        std::string batch;
        for (int i = 0; i < 100; ++i)
            batch += raw_request("GET", "/healthz", {{"X-Request-Id", "drain-" + std::to_string(sent + i)}});
        ASSERT_TRUE(c.send(batch));
        for (int i = 0; i < 100; ++i) ASSERT_EQ(c.read_response().status, 200);
    }
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(10s), 0);
    std::ifstream in(log_path);
    int lines = 0;
    for (std::string line; std::getline(in, line);)
        if (line.find(" info access request_id=drain-") != std::string::npos) ++lines;
    EXPECT_EQ(lines, kRequests) << "access lines lost at the drain";
    std::filesystem::remove(log_path);
}
