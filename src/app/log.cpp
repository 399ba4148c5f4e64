#include "userapi/app/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace userapi::app {
namespace {

bool json_mode = false;  // set once at start-up, before any thread logs

}  // namespace

void setup_logging(const std::string& level, const std::string& format) {
    spdlog::drop("userapi");  // set-up may run again (tests start many servers)
    auto logger = spdlog::stderr_logger_mt("userapi");
    spdlog::set_default_logger(logger);
    json_mode = format == "json";
    if (json_mode)
        spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","message":"%v"})",
                            spdlog::pattern_time_type::utc);
    else
        spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
    spdlog::set_level(spdlog::level::from_str(level));
    spdlog::flush_on(spdlog::level::warn);
}

std::string escape_for_log(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

void log_line(spdlog::level::level_enum level, std::string_view message) {
    // In JSON mode the message sits inside a JSON string; escaped text has no quote or
    // backslash of its own, so only our own \x escapes need doubling.
    if (!json_mode) {
        spdlog::default_logger_raw()->log(level, "{}", message);
        return;
    }
    std::string j;
    j.reserve(message.size());
    for (char c : message) {
        if (c == '\\')
            j += "\\\\";
        else if (c == '"')
            j += "\\\"";
        else
            j += c;
    }
    spdlog::default_logger_raw()->log(level, "{}", j);
}

}  // namespace userapi::app
