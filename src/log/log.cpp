#include "userapi/log/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace userapi::log {
namespace {

bool json_mode = false;  // set at start-up, before any thread logs

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

namespace {

// Appends `text` escaped (control characters, quotes, backslashes, non-ASCII as \xNN); with
// `json`, the escape's backslash is escaped once more for the JSON string.
void append_escaped(std::string& out, std::string_view text, bool json) {
    static constexpr char hex[] = "0123456789abcdef";
    const auto plain = [](unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; };
    while (!text.empty()) {
        // Most text needs no escape at all: copy the plain run in one go.
        std::size_t run = 0;
        while (run < text.size() && plain(static_cast<unsigned char>(text[run]))) ++run;
        out.append(text.data(), run);
        if (run == text.size()) return;
        const auto c = static_cast<unsigned char>(text[run]);
        out += json ? "\\\\x" : "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
        text.remove_prefix(run + 1);
    }
}

// A plain loop: find_first_of calls memchr once per character of `v` (a profile's top libc symbol
// with the access log on).
bool needs_quotes_raw(std::string_view v) {
    if (v.empty()) return true;
    for (const char c : v)
        if (c == ' ' || c == '=') return true;
    return false;
}

}  // namespace

bool json_format() { return json_mode; }

void append_event(std::string& line, std::string_view message, std::initializer_list<log_field> fields) {
    if (json_mode) {
        line += "\"message\":\"";
        append_escaped(line, message, true);
        line += '"';
        for (const auto& f : fields) {
            line += ",\"";
            line += f.key;
            line += "\":";
            if (f.number) {
                line += f.value;
            } else {
                line += '"';
                append_escaped(line, f.value, true);
                line += '"';
            }
        }
        return;
    }
    append_escaped(line, message, false);
    for (const auto& f : fields) {
        line += ' ';
        line += f.key;
        line += '=';
        // Escaping never adds a blank or '=', so the raw value decides the quotes.
        const bool quote = !f.number && needs_quotes_raw(f.value);
        if (quote) line += '"';
        append_escaped(line, f.value, false);
        if (quote) line += '"';
    }
}

void log_event(spdlog::level::level_enum level, std::string_view message, std::initializer_list<log_field> fields) {
    std::string line;
    line.reserve(64 + message.size() + fields.size() * 32);
    append_event(line, message, fields);
    spdlog::default_logger_raw()->log(level, "{}", line);
}

}  // namespace userapi::log
