// The userapi binary itself: command line, the listening line, and the SIGTERM drain.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <regex>

#include "support/http_client.hpp"

using namespace std::chrono_literals;
using namespace userapi::testing;

extern char** environ;

namespace {

// A running userapi process; killed if the test did not end it.
class process {
public:
    explicit process(std::vector<std::string> args) {
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        args.insert(args.begin(), USERAPI_BINARY);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (posix_spawn(&pid_, USERAPI_BINARY, &fa, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("spawn");
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        out_ = out[0];
    }
    ~process() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        ::close(out_);
    }
    // Everything written to stdout until `pattern` matches or `limit` passes.
    std::string read_until(const std::regex& pattern, std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!std::regex_search(stdout_, pattern)) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left <= 0ms) break;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            char buf[4096];
            const auto n = ::read(out_, buf, sizeof buf);
            if (n <= 0) break;
            stdout_.append(buf, static_cast<std::size_t>(n));
        }
        return stdout_;
    }
    // Exit status, or -1 if still running after `limit`.
    int wait_exit(std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(10ms);
        }
        return -1;
    }
    void signal(int sig) { kill(pid_, sig); }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string stdout_;
};

std::uint16_t listening_port(process& p) {
    std::smatch m;
    const auto out = p.read_until(std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"));
    if (!std::regex_search(out, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"))) return 0;
    return static_cast<std::uint16_t>(std::stoi(m[1]));
}

}  // namespace

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
