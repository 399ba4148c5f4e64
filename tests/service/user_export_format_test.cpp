// The export format (contract section 10): the header and user lines as written, and every
// line the import refuses, with the member at fault named.
#include "userapi/service/user_export_format.hpp"

#include <gtest/gtest.h>

#include <regex>

using namespace userapi::service;

namespace {

// The reason a user line is refused ("" when it is accepted).
std::string refusal(std::string_view line) {
    auto r = parse_export_user(line);
    if (auto* bad = std::get_if<export_line_error>(&r)) return bad->detail;
    return "";
}

std::string header_refusal(std::string_view line) {
    auto r = parse_export_header(line);
    if (auto* bad = std::get_if<export_line_error>(&r)) return bad->detail;
    return "";
}

bool names(const std::string& detail, const std::string& field) {
    return std::regex_search(detail, std::regex("(^|[^A-Za-z0-9_])" + field + "([^A-Za-z0-9_]|$)"));
}

std::string line(const user& u) {
    std::string out;
    append_export_line(out, u);
    return out;
}

}  // namespace

TEST(ExportFormat, HeaderHasTheFormatNextIdAndCount) {
    EXPECT_EQ(format_export_header({42, 7}), R"({"userapi_export":1,"next_id":42,"users":7})");
    auto h = std::get<export_header>(parse_export_header(format_export_header({42, 7})));
    EXPECT_EQ(h.next_id, 42);
    EXPECT_EQ(h.users, 7);
}

// A later writer may add members to the header; this reader keeps what it knows.
TEST(ExportFormat, HeaderMayCarryMoreMembers) {
    auto r = parse_export_header(R"({"users":0,"exported_at":"2026-12-01T10:00:00Z","next_id":1,"userapi_export":1})");
    ASSERT_TRUE(std::holds_alternative<export_header>(r)) << header_refusal("");
}

TEST(ExportFormat, BadHeadersAreRefusedNamingTheMember) {
    EXPECT_TRUE(names(header_refusal(R"({"userapi_export":2,"next_id":1,"users":0})"), "format"));
    EXPECT_TRUE(names(header_refusal(R"({"userapi_export":1,"next_id":0,"users":0})"), "next_id"));
    EXPECT_TRUE(names(header_refusal(R"({"userapi_export":1,"next_id":1.5,"users":0})"), "next_id"));
    EXPECT_TRUE(names(header_refusal(R"({"userapi_export":1,"users":0})"), "next_id"));
    EXPECT_TRUE(names(header_refusal(R"({"userapi_export":1,"next_id":1,"users":-1})"), "users"));
    EXPECT_TRUE(names(header_refusal(R"({"userapi_export":1,"next_id":9223372036854775808,"users":0})"), "next_id"));
    EXPECT_NE(header_refusal(R"({"id":1,"name":"a","email":"a@b.cd","version":1})"), "");  // a user, not a header
    EXPECT_NE(header_refusal("[1]"), "");
    EXPECT_NE(header_refusal("{"), "");
}

// Every kind of name survives the line: astral plane, combining marks, right-to-left, quotes,
// backslashes; non-ASCII is written as it is (UTF-8), not escaped.
TEST(ExportFormat, UserLinesRoundTrip) {
    for (const std::string name : {"Zoë \"Quote\" O'Brien", "emoji 😀 𝄞", "e\u0301le\u0300ve", "שלום עולם",
                                   "مرحبا بالعالم", "back\\slash", "tab-less <>&"}) {
        const user u{9223372036854775807, name, "First.Last+tag@Example.ORG", 12};
        const auto text = line(u);
        ASSERT_EQ(text.back(), '\n');
        EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line per user";
        auto back = parse_export_user(std::string_view(text).substr(0, text.size() - 1));
        ASSERT_TRUE(std::holds_alternative<user>(back)) << refusal(text);
        EXPECT_EQ(std::get<user>(back), u);
    }
    EXPECT_EQ(line({3, "日本", "a@b.cd", 2}), "{\"id\":3,\"name\":\"日本\",\"email\":\"a@b.cd\",\"version\":2}\n");
}

TEST(ExportFormat, MembersMayComeInAnyOrderWithSpaces) {
    EXPECT_EQ(refusal(R"( { "version" : 2 , "email":"a@b.cd", "name":"A", "id": 5 } )"), "");
}

// A value POST /users would refuse is refused here, naming its field, with POST's words.
TEST(ExportFormat, ValuesAreCheckedAsPostUsersChecksThem) {
    EXPECT_TRUE(
        names(refusal(R"({"id":1,"name":")" + std::string(101, 'n') + R"(","email":"a@b.cd","version":1})"), "name"));
    EXPECT_EQ(refusal(R"({"id":1,"name":")" + std::string(100, 'n') + R"(","email":"a@b.cd","version":1})"), "");
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"","email":"a@b.cd","version":1})"), "name"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"\u202Eevil","email":"a@b.cd","version":1})"), "name"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"tab\there","email":"a@b.cd","version":1})"), "name"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"A","email":"not-an-email","version":1})"), "email"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"A","email":"a@b","version":1})"), "email"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"A","email":7,"version":1})"), "email"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":null,"email":"a@b.cd","version":1})"), "name"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":["A"],"email":"a@b.cd","version":1})"), "name"));
}

TEST(ExportFormat, IdsAndVersionsAreWholeNumbersFromOne) {
    for (const char* bad : {"0", "-1", "1.0", "1e3", "\"1\"", "9223372036854775808", "99999999999999999999", "null"}) {
        EXPECT_TRUE(
            names(refusal(std::string(R"({"id":)") + bad + R"(,"name":"A","email":"a@b.cd","version":1})"), "id"))
            << bad;
        EXPECT_TRUE(
            names(refusal(std::string(R"({"id":1,"name":"A","email":"a@b.cd","version":)") + bad + "}"), "version"))
            << bad;
    }
}

TEST(ExportFormat, MissingUnknownAndRepeatedMembersAreNamed) {
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"A","email":"a@b.cd"})"), "version"));
    EXPECT_TRUE(names(refusal(R"({"name":"A","email":"a@b.cd","version":1})"), "id"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"A","email":"a@b.cd","version":1,"admin":true})"), "admin"));
    EXPECT_TRUE(names(refusal(R"({"id":1,"name":"A","name":"B","email":"a@b.cd","version":1})"), "name"));
}

TEST(ExportFormat, LinesThatAreNotAJsonObjectAreRefused) {
    for (const char* bad : {"", "{", R"({"id": 2, "name": "Cut)", "[]", "42", "null", "\"user\"",
                            R"({"id":1,"name":"A","email":"a@b.cd","version":1} x)",
                            R"({"id":1,"name":"A","email":"a@b.cd","version":1}{})"})
        EXPECT_NE(refusal(bad), "") << bad;
    EXPECT_EQ(refusal("{\"id\":1,\"name\":\"A\xff\",\"email\":\"a@b.cd\",\"version\":1}"), "not valid UTF-8");
}

TEST(ExportFormat, RecordProblemsNameTheField) {
    EXPECT_EQ(user_record_problem({1, "A", "a@b.cd", 1}), "");
    EXPECT_TRUE(names(user_record_problem({0, "A", "a@b.cd", 1}), "id"));
    EXPECT_TRUE(names(user_record_problem({1, "A", "a@b.cd", 0}), "version"));
    EXPECT_TRUE(names(user_record_problem({1, "\x01", "a@b.cd", 1}), "name"));
    EXPECT_TRUE(names(user_record_problem({1, "A", "a@@b.cd", 1}), "email"));
}
