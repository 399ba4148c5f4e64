// The userapi binary as a child process, for tests of the process itself: its command line,
// its signals, its memory.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace userapi::testing {

using namespace std::chrono_literals;

// A running userapi process; killed if the test did not end it.
class process {
public:
    // `stderr_path`: where its standard error goes (default: nowhere).
    explicit process(std::vector<std::string> args, const std::string& stderr_path = "/dev/null") {
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
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
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string stdout_;
};

inline std::uint16_t listening_port(process& p) {
    std::smatch m;
    const auto out = p.read_until(std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"));
    if (!std::regex_search(out, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"))) return 0;
    return static_cast<std::uint16_t>(std::stoi(m[1]));
}

// Resident memory of `pid` in KiB (VmRSS), or -1.
inline long resident_kib(pid_t pid) {
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    std::fclose(f);
    return kib;
}

}  // namespace userapi::testing
