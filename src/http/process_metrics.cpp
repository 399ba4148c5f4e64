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

double seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; }

}  // namespace

void render_process_metrics(prometheus_writer& w) {
    rusage ru{};
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        w.counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                  seconds(ru.ru_utime) + seconds(ru.ru_stime));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    std::ifstream statm("/proc/self/statm");
    double vm_pages = 0, rss_pages = 0;
    if (statm >> vm_pages >> rss_pages) {
        w.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", vm_pages * page);
        w.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss_pages * page);
    }
    std::error_code ec;
    std::size_t fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
    if (!ec) w.gauge("process_open_fds", "Open file descriptors.", static_cast<double>(fds));
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        w.gauge("process_max_fds", "Most file descriptors the process may open.", static_cast<double>(rl.rlim_cur));
    w.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
            process_start_seconds);
}

}  // namespace userapi::http
