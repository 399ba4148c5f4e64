#include "userapi/log/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace userapi::log {
namespace {

bool json_mode = false;  // set at start-up, before any thread logs

// Escaped text holds only printable ASCII; inside a JSON string its quotes and backslashes
// (none of them the client's: those became \x22 and \x5c) need one more escape.
void append_json_string(std::string& out, std::string_view escaped) {
    out += '"';
    for (char c : escaped) {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    out += '"';
}

bool needs_quotes(std::string_view v) { return v.empty() || v.find_first_of(" =") != std::string_view::npos; }

}  // namespace

void setup_logging(const std::string& level, const std::string& format, spdlog::sink_ptr sink) {
    spdlog::drop("userapi");  // set-up may run again (tests start many servers)
    auto logger =
        sink ? std::make_shared<spdlog::logger>("userapi", std::move(sink)) : spdlog::stderr_logger_mt("userapi");
    spdlog::set_default_logger(logger);
    json_mode = format == "json";
    if (json_mode)
        spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})", spdlog::pattern_time_type::utc);
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

void log_event(spdlog::level::level_enum level, std::string_view message, std::initializer_list<log_field> fields) {
    std::string line;
    line.reserve(64 + message.size() + fields.size() * 32);
    if (json_mode) {
        line += "\"message\":";
        append_json_string(line, escape_for_log(message));
        for (const auto& f : fields) {
            line += ',';
            append_json_string(line, f.key);
            line += ':';
            if (f.number)
                line += f.value;
            else
                append_json_string(line, escape_for_log(f.value));
        }
    } else {
        line += escape_for_log(message);
        for (const auto& f : fields) {
            line += ' ';
            line += f.key;
            line += '=';
            const auto v = escape_for_log(f.value);
            if (!f.number && needs_quotes(v)) {
                line += '"';
                line += v;
                line += '"';
            } else {
                line += v;
            }
        }
    }
    spdlog::default_logger_raw()->log(level, "{}", line);
}

}  // namespace userapi::log
