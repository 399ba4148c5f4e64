#include "userapi/log/log.hpp"

#include <mutex>
#include <regex>
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

#include <thread>

#include "userapi/log/access_log.hpp"

namespace {

// The access lines written through the batched log, with their time cut off.
std::vector<std::string> batched(const std::string& format, int threads, int per_thread) {
    std::ostringstream spdlog_out;
    userapi::log::setup_logging("info", format, std::make_shared<spdlog::sinks::ostream_sink_mt>(spdlog_out));
    std::mutex mu;
    std::string out;
    userapi::log::start_access_log(2, [&](std::string_view text) {
        std::lock_guard lock(mu);
        out += text;
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([t, per_thread] {
            for (int i = 0; i < per_thread; ++i) {
                const auto id = "t" + std::to_string(t) + "-" + std::to_string(i);
                userapi::log::access_event({{"request_id", id}, {"path", "/x y\n"}, {"status", "200", true}});
            }
        });
    for (auto& w : writers) w.join();
    userapi::log::stop_access_log();
    userapi::log::setup_logging("warn", "text");
    std::vector<std::string> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

// Batched access lines have the format log_event gives them, and every one is written by the
// time stop_access_log() returns, whole, from any number of threads.
TEST(AccessLog, SameLinesAsLogEventNoneLost) {
    const auto via_spdlog = captured("text", [] {
        userapi::log::log_event(spdlog::level::info, "access",
                                {{"request_id", "t0-0"}, {"path", "/x y\n"}, {"status", "200", true}});
    });
    ASSERT_EQ(via_spdlog.size(), 1u);
    const auto lines = batched("text", 4, 2500);
    ASSERT_EQ(lines.size(), 10000u) << "lines were lost";
    const auto tail = [](const std::string& l) { return l.substr(l.find(' ')); };  // after the time
    EXPECT_NE(std::find_if(lines.begin(), lines.end(), [&](auto& l) { return tail(l) == tail(via_spdlog[0]); }),
              lines.end())
        << "no batched line matches " << via_spdlog[0];
    const std::regex time(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} info access request_id=t\d-\d+ )");
    for (const auto& l : lines) ASSERT_TRUE(std::regex_search(l, time)) << l;
}

TEST(AccessLog, JsonLinesParse) {
    const auto lines = batched("json", 2, 100);
    ASSERT_EQ(lines.size(), 200u);
    for (const auto& l : lines) {
        const auto j = nlohmann::json::parse(l);
        EXPECT_EQ(j["level"], "info");
        EXPECT_EQ(j["message"], "access");
        EXPECT_EQ(j["status"], 200);
        EXPECT_EQ(j["path"], escape_for_log("/x y\n"));
        EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
    }
}
