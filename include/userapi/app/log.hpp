// Logging through spdlog, in text or JSON lines. Client-supplied text (paths, header values)
// is escaped so that it can never forge a log line.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace userapi::app {

// Sets the level and format ("text" or "json") of the process-wide logger, which writes to stderr.
void setup_logging(const std::string& level, const std::string& format);

// `text` with control characters, quotes, backslashes and non-ASCII bytes escaped as \xNN.
std::string escape_for_log(std::string_view text);

// Writes one line; `message` is already escaped. JSON mode wraps it in an object.
void log_line(spdlog::level::level_enum level, std::string_view message);

inline bool log_enabled(spdlog::level::level_enum level) { return spdlog::default_logger_raw()->should_log(level); }

}  // namespace userapi::app
