#include "userapi/app/log.hpp"

#include <gtest/gtest.h>

using userapi::app::escape_for_log;

// Client text cannot start a new log line or break out of a quoted field.
TEST(Log, EscapesControlCharactersQuotesAndNonAscii) {
    EXPECT_EQ(escape_for_log("/users/1"), "/users/1");
    EXPECT_EQ(escape_for_log("a\r\nforged line"), "a\\x0d\\x0aforged line");
    EXPECT_EQ(escape_for_log("say \"hi\" \\ bye"), "say \\x22hi\\x22 \\x5c bye");
    EXPECT_EQ(escape_for_log("caf\xc3\xa9"), "caf\\xc3\\xa9");
    EXPECT_EQ(escape_for_log(std::string("nul\0byte", 8)), "nul\\x00byte");
}
