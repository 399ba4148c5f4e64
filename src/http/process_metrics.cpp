#include "userapi/http/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace userapi::http {
namespace {

// Set during static initialisation, before main: the process's start, to the microsecond.
const double process_start_seconds =
    std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

void add(std::string& out, const char* name, const char* type, const char* help, double v) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    out +=
        std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + buf + "\n";
}

double seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; }

}  // namespace

void render_process_metrics(std::string& out) {
    rusage ru{};
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        add(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.",
            seconds(ru.ru_utime) + seconds(ru.ru_stime));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    std::ifstream statm("/proc/self/statm");
    double vm_pages = 0, rss_pages = 0;
    if (statm >> vm_pages >> rss_pages) {
        add(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vm_pages * page);
        add(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss_pages * page);
    }
    std::error_code ec;
    std::size_t fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
    if (!ec) add(out, "process_open_fds", "gauge", "Open file descriptors.", static_cast<double>(fds));
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        add(out, "process_max_fds", "gauge", "Most file descriptors the process may open.",
            static_cast<double>(rl.rlim_cur));
    add(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.",
        process_start_seconds);
}

}  // namespace userapi::http
