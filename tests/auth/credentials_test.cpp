// What a bearer token is, short of a JWT: the Authorization field's syntax (RFC 6750 2.1),
// base64url, the API key file and new keys, the scopes.
#include <gtest/gtest.h>

#include <variant>

#include "userapi/auth/api_keys.hpp"
#include "userapi/auth/authorization.hpp"
#include "userapi/auth/base64url.hpp"
#include "userapi/auth/scopes.hpp"

using namespace userapi;
using auth::bearer_credentials;

namespace {

TEST(Authorization, BearerWithAToken) {
    const auto c = auth::parse_authorization("Bearer abc.DEF-_~+/=");
    EXPECT_EQ(c.kind, bearer_credentials::bearer);
    EXPECT_EQ(c.token, "abc.DEF-_~+/=");
    EXPECT_EQ(auth::parse_authorization("bearer  tok").token, "tok") << "the scheme in any case, blanks between";
    EXPECT_EQ(auth::parse_authorization("BEARER tok ").token, "tok");
}

TEST(Authorization, OtherSchemesEmptyAndMalformed) {
    EXPECT_EQ(auth::parse_authorization("Basic dXNlcjpwYXNz").kind, bearer_credentials::other_scheme);
    EXPECT_EQ(auth::parse_authorization("Bearerish tok").kind, bearer_credentials::other_scheme);
    EXPECT_EQ(auth::parse_authorization("").kind, bearer_credentials::other_scheme);
    EXPECT_EQ(auth::parse_authorization("Bearer").kind, bearer_credentials::empty_bearer);
    EXPECT_EQ(auth::parse_authorization("Bearer   ").kind, bearer_credentials::empty_bearer);
    EXPECT_EQ(auth::parse_authorization("Bearer a b").kind, bearer_credentials::malformed);
    EXPECT_EQ(auth::parse_authorization("Bearer a=b").kind, bearer_credentials::malformed);
    EXPECT_EQ(auth::parse_authorization("Bearer =").kind, bearer_credentials::malformed);
    EXPECT_EQ(auth::parse_authorization("Bearer \"tok\"").kind, bearer_credentials::malformed);
}

TEST(Base64url, RoundTripsAndIsStrict) {
    for (const std::string& s :
         std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)})
        EXPECT_EQ(auth::base64url_decode(auth::base64url_encode(s)), s);
    EXPECT_EQ(auth::base64url_encode("\xfb\xff"), "-_8");
    EXPECT_FALSE(auth::base64url_decode("Zm9v="));  // padding
    EXPECT_FALSE(auth::base64url_decode("Zm+v"));   // the other alphabet
    EXPECT_FALSE(auth::base64url_decode("Zm 9v"));  // a blank
    EXPECT_FALSE(auth::base64url_decode("Z"));      // no byte ends there
    EXPECT_FALSE(auth::base64url_decode("Zh"));     // unused bits set: "Zg" is the encoding of "f"
    EXPECT_EQ(auth::base64url_decode("Zg"), "f");
}

TEST(Scopes, ListsAndNames) {
    std::string bad;
    const auto s = auth::parse_scope_list({"users:read  admin", "users:write"}, &bad);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->to_string(), "users:read users:write admin");
    EXPECT_FALSE(auth::parse_scope_list({"users:read", "users:delete"}, &bad));
    EXPECT_EQ(bad, "users:delete");
    EXPECT_TRUE(auth::parse_scope_list({""})->empty());
}

std::string digest_hex(std::string_view key) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : auth::sha256_of(key)) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string key_file(std::string entries) { return R"({"keys":[)" + entries + "]}"; }

TEST(ApiKeys, FindsAKeyByItsDigest) {
    const auto text = key_file(R"({"id":"billing","sha256":")" + digest_hex("k1") +
                               R"(","scopes":["users:read"],"rate_limit":{"capacity":100,"refill_per_minute":6000}},)"
                               R"({"id":"ops","sha256":")" +
                               digest_hex("k2") + R"(","scopes":["admin"]})");
    auto parsed = auth::api_key_set::parse(text);
    ASSERT_TRUE(std::holds_alternative<auth::api_key_set>(parsed)) << std::get<std::string>(parsed);
    const auto& set = std::get<auth::api_key_set>(parsed);
    const auto billing = set.find("k1");
    ASSERT_TRUE(billing);
    EXPECT_EQ(billing->identity, "key:billing");
    EXPECT_EQ(billing->scopes.to_string(), "users:read");
    ASSERT_TRUE(billing->rate_limit);
    EXPECT_EQ(billing->rate_limit->capacity, 100);
    EXPECT_DOUBLE_EQ(billing->rate_limit->refill_per_second, 100);
    EXPECT_EQ(set.find("k2")->identity, "key:ops");
    EXPECT_FALSE(set.find("k2")->rate_limit);
    EXPECT_FALSE(set.find("k3"));
    EXPECT_FALSE(set.find(digest_hex("k1"))) << "the digest itself is no key";
}

TEST(ApiKeys, UppercaseDigestsAreTheSame) {
    auto hex = digest_hex("k1");
    for (auto& c : hex) c = static_cast<char>(std::toupper(c));
    auto parsed = auth::api_key_set::parse(key_file(R"({"id":"a","sha256":")" + hex + R"(","scopes":[]})"));
    ASSERT_TRUE(std::holds_alternative<auth::api_key_set>(parsed));
    EXPECT_TRUE(std::get<auth::api_key_set>(parsed).find("k1"));
}

TEST(ApiKeys, BadFilesSayWhatIsWrong) {
    const auto d = digest_hex("k");
    const std::pair<std::string, std::string> cases[] = {
        {"[", "not valid JSON"},
        {"[]", "must be an object"},
        {R"({"keys":[],"extra":1})", "unknown member extra"},
        {key_file(R"({"id":"a b","sha256":")" + d + R"(","scopes":[]})"), "keys[0].id"},
        {key_file(R"({"id":"a","sha256":"abc","scopes":[]})"), "keys[0].sha256"},
        {key_file(R"({"id":"a","sha256":")" + d + R"(","scopes":["users:all"]})"), "keys[0].scopes"},
        {key_file(R"({"id":"a","sha256":")" + d + R"(","scope":["users:read"]})"), "unknown member scope"},
        {key_file(R"({"id":"a","sha256":")" + d +
                  R"(","scopes":[],"rate_limit":{"capacity":0,"refill_per_minute":1}})"),
         "rate_limit"},
        {key_file(R"({"id":"a","sha256":")" + d + R"(","scopes":[]},{"id":"a","sha256":")" + digest_hex("x") +
                  R"(","scopes":[]})"),
         "given twice"},
        {key_file(R"({"id":"a","sha256":")" + d + R"(","scopes":[]},{"id":"b","sha256":")" + d + R"(","scopes":[]})"),
         "same sha256"},
    };
    for (const auto& [text, expected] : cases) {
        auto parsed = auth::api_key_set::parse(text);
        ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << text;
        EXPECT_NE(std::get<std::string>(parsed).find(expected), std::string::npos)
            << std::get<std::string>(parsed) << " for " << text;
    }
}

TEST(ApiKeys, NewKeysAreLongRandomAndTheirEntryWorks) {
    const auto a = auth::make_api_key("billing", {"users:read"});
    const auto b = auth::make_api_key("billing", {"users:read"});
    EXPECT_NE(a.key, b.key);
    EXPECT_EQ(a.key.size(), 43u) << "32 random bytes in base64url";
    EXPECT_TRUE(auth::base64url_decode(a.key));
    EXPECT_EQ(a.entry_json.find(a.key), std::string::npos) << "the entry holds no key";
    auto parsed = auth::api_key_set::parse(key_file(a.entry_json));
    ASSERT_TRUE(std::holds_alternative<auth::api_key_set>(parsed));
    const auto who = std::get<auth::api_key_set>(parsed).find(a.key);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->identity, "key:billing");
    EXPECT_FALSE(std::get<auth::api_key_set>(parsed).find(b.key));
}

}  // namespace
