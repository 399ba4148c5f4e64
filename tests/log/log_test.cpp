#include "userapi/log/log.hpp"

#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>

using userapi::log::escape_for_log;

// Client text cannot start a new log line or break out of a quoted field.
TEST(Log, EscapesControlCharactersQuotesAndNonAscii) {
    EXPECT_EQ(escape_for_log("/users/1"), "/users/1");
    EXPECT_EQ(escape_for_log("a\r\nforged line"), "a\\x0d\\x0aforged line");
    EXPECT_EQ(escape_for_log("say \"hi\" \\ bye"), "say \\x22hi\\x22 \\x5c bye");
    EXPECT_EQ(escape_for_log("caf\xc3\xa9"), "caf\\xc3\\xa9");
    EXPECT_EQ(escape_for_log(std::string("nul\0byte", 8)), "nul\\x00byte");
}

namespace {

// Runs `body` with the process logger writing into a string, in `format`; returns the lines.
template <class F>
std::vector<std::string> captured(const std::string& format, F body) {
    std::ostringstream out;
    userapi::log::setup_logging("info", format, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    body();
    spdlog::default_logger()->flush();
    userapi::log::setup_logging("warn", "text");
    std::vector<std::string> lines;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST(Log, TextEventsAreKeyValuePairsQuotedWhenNeeded) {
    using userapi::log::log_event;
    const auto lines = captured("text", [] {
        log_event(spdlog::level::info, "access",
                  {{"request_id", "abc"}, {"path", "/x y\n"}, {"status", "200", true}, {"empty", ""}});
    });
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(" info access request_id=abc path=\"/x y\\x0a\" status=200 empty=\"\""), std::string::npos)
        << lines[0];
}

// Each JSON line is one object that a JSON parser reads back with the same values, even
// when the client sent quotes, backslashes, newlines or bytes that are not UTF-8.
TEST(Log, JsonEventsAreOneObjectPerLine) {
    using userapi::log::log_event;
    const std::string hostile = "/a\"b\\c\nd\xff";
    const auto lines = captured("json", [&] {
        log_event(spdlog::level::warn, "say \"hi\"", {{"request_id", "r-1"}, {"path", hostile}, {"ms", "1.5", true}});
        log_event(spdlog::level::info, "plain");
    });
    ASSERT_EQ(lines.size(), 2u);
    const auto j = nlohmann::json::parse(lines[0]);
    EXPECT_EQ(j["level"], "warning");
    EXPECT_EQ(j["message"], userapi::log::escape_for_log("say \"hi\""));
    EXPECT_EQ(j["request_id"], "r-1");
    EXPECT_EQ(j["path"], escape_for_log(hostile));
    EXPECT_EQ(j["ms"], 1.5);
    EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
    EXPECT_EQ(nlohmann::json::parse(lines[1])["message"], "plain");
}
