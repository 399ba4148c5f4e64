#include "userapi/service/user_validation.hpp"

#include <gtest/gtest.h>

#include <regex>

using namespace userapi::service;

namespace {

// The detail of a rejected body ("" when the body is accepted).
std::string rejection(std::string_view body) {
    auto r = parse_new_user(body);
    if (auto* bad = std::get_if<invalid_user>(&r)) return bad->detail;
    return "";
}

bool names(const std::string& detail, const std::string& field) {
    return std::regex_search(detail, std::regex("(^|[^A-Za-z0-9_])" + field + "([^A-Za-z0-9_]|$)"));
}

std::string body(const std::string& name, const std::string& email) {
    return R"({"name":")" + name + R"(","email":")" + email + R"("})";
}

}  // namespace

TEST(UserValidation, AcceptsAValidUser) {
    auto r = parse_new_user(R"({"name":"Ada Lovelace","email":"ada@example.org"})");
    auto* u = std::get_if<new_user>(&r);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->name, "Ada Lovelace");
    EXPECT_EQ(u->email, "ada@example.org");
}

TEST(UserValidation, RejectsBodiesThatAreNotAnObject) {
    for (auto b : {"", "   ", "{", R"({"name": "x", "email": )", "[]", R"("just a string")", "42", "null", "true"})
        EXPECT_NE(rejection(b), "") << b;
}

// Found by fuzzing: a number too large for a double threw past the parser's own errors.
TEST(UserValidation, RejectsOutOfRangeNumbers) {
    EXPECT_NE(rejection("1e999"), "");
    EXPECT_NE(rejection(R"({"name":"x","email":"x@example.org","n":-1e999})"), "");
}

TEST(UserValidation, RejectsInvalidUtf8) {
    EXPECT_EQ(rejection("{\"name\":\"Bad \xff\xfe\",\"email\":\"a@example.org\"}"), "body is not valid UTF-8");
}

TEST(UserValidation, NameRules) {
    EXPECT_TRUE(names(rejection(R"({"email":"a@example.org"})"), "name"));
    EXPECT_TRUE(names(rejection(body("", "a@example.org")), "name"));
    EXPECT_TRUE(names(rejection(R"({"name":123,"email":"a@example.org"})"), "name"));
    EXPECT_TRUE(names(rejection(R"({"name":null,"email":"a@example.org"})"), "name"));
    EXPECT_TRUE(names(rejection(body("   ", "a@example.org")), "name"));
    EXPECT_TRUE(names(rejection(body("a\\nb", "a@example.org")), "name")) << "control characters";
    EXPECT_EQ(rejection(body(std::string(100, 'n'), "a@example.org")), "");
    EXPECT_TRUE(names(rejection(body(std::string(101, 'n'), "a@example.org")), "name"));
}

// The 100 limit counts characters, not bytes.
TEST(UserValidation, NameLengthCountsCodePoints) {
    std::string e100, e101;
    for (int i = 0; i < 100; ++i) e100 += "é";
    e101 = e100 + "é";
    EXPECT_EQ(rejection(body(e100, "a@example.org")), "");
    EXPECT_TRUE(names(rejection(body(e101, "a@example.org")), "name"));
    EXPECT_EQ(utf8_length("Zoë 李"), 5u);
}

TEST(UserValidation, EmailRules) {
    EXPECT_TRUE(names(rejection(R"({"name":"x"})"), "email"));
    EXPECT_TRUE(names(rejection(R"({"name":"x","email":7})"), "email"));
    for (auto e : {"", "not-an-email", "a@b", "@example.com", "local@", "a@@example.com", "a b@example.com",
                   "a@exa mple.com", ".a@example.com", "a..b@example.com", "a@-x.com", "a@x.c", "a@x.123"})
        EXPECT_TRUE(names(rejection(body(e, "")), "email") || names(rejection(body("x", e)), "email")) << e;
    const std::string e254 = std::string(64, 'v') + "@" + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                             std::string(57, 'd') + ".com";
    ASSERT_EQ(e254.size(), 254u);
    EXPECT_EQ(rejection(body("x", e254)), "");
    const std::string e255 = std::string(64, 'u') + "@" + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                             std::string(58, 'd') + ".com";
    EXPECT_TRUE(names(rejection(body("x", e255)), "email"));
    EXPECT_TRUE(is_valid_email("first.last+tag@mail.example.co.uk"));
}

// Only name and email: any other member, id included, is named in the detail.
TEST(UserValidation, RejectsOtherMembers) {
    EXPECT_TRUE(names(rejection(R"({"name":"x","email":"a@example.org","nickname":"y"})"), "nickname"));
    EXPECT_TRUE(names(rejection(R"({"id":7,"name":"x","email":"a@example.org"})"), "id"));
}

// A member given twice is ambiguous: rejected rather than silently merged.
TEST(UserValidation, RejectsDuplicateMembers) {
    EXPECT_TRUE(names(rejection(R"({"name":"x","name":"y","email":"a@example.org"})"), "name"));
}

// A name must show something: only invisible characters (zero-width spaces, joiners, no-break
// spaces, fillers) is as blank as spaces; bidirectional controls, which reorder the text
// around them, are refused anywhere.
TEST(UserValidation, InvisibleNamesAndBidiControlsAreRejected) {
    for (auto n : {"\u200B\u200B", "\u00A0", "\u200D\u2060", "\uFEFF", "\u3164", "\u3000 \u2003"})
        EXPECT_TRUE(names(name_problem(n), "name")) << "invisible only: " << n;
    for (auto n : {"abc\u202Efdp.exe", "\u202Aa", "x\u2066y\u2069", "\u202Dz"})
        EXPECT_TRUE(names(name_problem(n), "name")) << "bidi control: " << n;
    EXPECT_TRUE(names(name_problem("a\u0085b"), "name")) << "a C1 control";
    for (auto n : {"Zoë", "李小龙", "a\u200Bb", "José\u00A0María", "\u05E9\u05DC\u05D5\u05DD", "👩‍💻"})
        EXPECT_EQ(name_problem(n), "") << n;
    EXPECT_TRUE(names(rejection(body("\\u200b\\u200b", "a@example.org")), "name")) << "through the JSON body";
}
