// The process_* metrics every Prometheus client library exports (CPU, memory, descriptors,
// start time), read from getrusage, getrlimit and /proc/self on each scrape.
#pragma once

#include <string>

namespace userapi::http {

void render_process_metrics(std::string& out);

}  // namespace userapi::http
