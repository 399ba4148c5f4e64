// Logging through spdlog: one line per event, as text (`message key=value ...`) or as one JSON
// object. Client-supplied text (paths, header values) is escaped so it can never forge a line.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace userapi::log {

// Sets the level and format ("text" or "json") of the process-wide logger. It writes to stderr,
// or to `sink` when one is given (tests read their own log that way).
void setup_logging(const std::string& level, const std::string& format, spdlog::sink_ptr sink = nullptr);

// `text` with control characters, quotes, backslashes and non-ASCII bytes escaped as \xNN.
std::string escape_for_log(std::string_view text);

// One field of an event. `value` is escaped when written; a number is written bare in JSON.
struct log_field {
    std::string_view key;
    std::string_view value;
    bool number = false;
};

// Writes `message` and its fields as one line. Every event a request causes carries its
// `request_id` field, so one grep finds all of them.
void log_event(spdlog::level::level_enum level, std::string_view message, std::initializer_list<log_field> fields = {});

// The part of a line after its time and level, as the current format writes it: appended to
// `out` (the access log formats its lines with this too).
void append_event(std::string& out, std::string_view message, std::initializer_list<log_field> fields);
bool json_format();

inline void log_line(spdlog::level::level_enum level, std::string_view message) { log_event(level, message); }

inline bool log_enabled(spdlog::level::level_enum level) { return spdlog::default_logger_raw()->should_log(level); }

}  // namespace userapi::log
