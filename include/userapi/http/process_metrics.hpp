// The process_* metrics every Prometheus client library exports (CPU, memory, descriptors,
// start time), read from getrusage, getrlimit and /proc/self on each scrape.
#pragma once

#include "userapi/http/prometheus_writer.hpp"

namespace userapi::http {

void render_process_metrics(prometheus_writer& w);

}  // namespace userapi::http
