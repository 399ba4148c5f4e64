#include "userapi/core/ip_address.hpp"
#include "userapi/core/client_resolver.hpp"

#include <gtest/gtest.h>

using namespace userapi::core;

namespace {

ip_address ip(const char* s) {
    auto a = parse_ip(s);
    EXPECT_TRUE(a) << s;
    return a.value_or(ip_address{});
}

client_resolver resolver(std::vector<const char*> cidrs, int v6_prefix = 64) {
    std::vector<cidr> out;
    for (auto c : cidrs) out.push_back(*parse_cidr(c));
    return client_resolver(out, v6_prefix);
}

}  // namespace

TEST(IpAddress, ParsesBothFamilies) {
    EXPECT_TRUE(ip("192.0.2.1").is_v4());
    EXPECT_EQ(ip("192.0.2.1").to_string(), "192.0.2.1");
    EXPECT_FALSE(ip("2001:db8::1").is_v4());
    EXPECT_EQ(ip("[2001:db8::1]").to_string(), "2001:db8::1");
    EXPECT_EQ(ip(" 10.0.0.1 ").to_string(), "10.0.0.1");
    for (auto bad : {"", "1.2.3", "300.1.2.3", "abc", "1.2.3.4:80", "::g", "[::1"}) EXPECT_FALSE(parse_ip(bad)) << bad;
}

TEST(Cidr, ContainsByPrefix) {
    auto ten = parse_cidr("10.9.0.0/16");
    ASSERT_TRUE(ten);
    EXPECT_TRUE(ten->contains(ip("10.9.200.1")));
    EXPECT_FALSE(ten->contains(ip("10.10.0.1")));
    EXPECT_FALSE(ten->contains(ip("::ffff:0a0a:0001")));
    auto host = parse_cidr("127.0.0.1");
    ASSERT_TRUE(host);
    EXPECT_TRUE(host->contains(ip("127.0.0.1")));
    EXPECT_FALSE(host->contains(ip("127.0.0.2")));
    auto v6 = parse_cidr("2001:db8::/32");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->contains(ip("2001:db8:ffff::1")));
    EXPECT_FALSE(v6->contains(ip("2001:db9::1")));
    EXPECT_TRUE(parse_cidr("0.0.0.0/0")->contains(ip("8.8.8.8")));
    for (auto bad : {"300.1.2.3/40", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "x/8"})
        EXPECT_FALSE(parse_cidr(bad)) << bad;
}

// IPv6 clients are keyed by their /64; IPv4 by the whole address.
TEST(ClientKey, Ipv6ByPrefix) {
    EXPECT_EQ(client_key(ip("2001:db8:1:2:aaaa::1"), 64), client_key(ip("2001:db8:1:2:bbbb::9"), 64));
    EXPECT_NE(client_key(ip("2001:db8:1:2::1"), 64), client_key(ip("2001:db8:1:3::1"), 64));
    EXPECT_NE(client_key(ip("192.0.2.1"), 64), client_key(ip("192.0.2.2"), 64));
}

// Without trusted proxies X-Forwarded-For changes nothing.
TEST(ClientResolver, IgnoresForwardedForWithoutTrustedProxy) {
    auto r = resolver({});
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "198.51.100.1"), ip("127.0.0.1"));
}

// From an untrusted peer X-Forwarded-For changes nothing.
TEST(ClientResolver, IgnoresForwardedForFromUntrustedPeer) {
    auto r = resolver({"192.0.2.0/24"});
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "198.51.100.1"), ip("127.0.0.1"));
}

// From a trusted peer: the right-most address that is not itself a trusted proxy.
TEST(ClientResolver, RightmostUntrustedAddress) {
    auto r = resolver({"127.0.0.1/32", "10.9.0.0/16"});
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "1.2.3.4, 5.6.7.8"), ip("5.6.7.8"));
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "5.6.7.8, 10.9.1.1"), ip("5.6.7.8"));
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "5.6.7.8,1.2.3.4"), ip("1.2.3.4"));
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), ""), ip("127.0.0.1")) << "no header: the proxy itself is the client";
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "10.9.0.1, 10.9.0.2"), ip("10.9.0.1")) << "all trusted: the left-most";
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "5.6.7.8, garbage, 10.9.1.1"), ip("10.9.1.1"))
        << "an unreadable hop ends the walk at the last trusted address";
    EXPECT_EQ(r.resolve(ip("127.0.0.1"), "2001:db8:1:2::5"), client_key(ip("2001:db8:1:2::9"), 64));
}

#include "userapi/core/redis_uri.hpp"

TEST(RedisUri, Parses) {
    auto t = userapi::core::parse_redis_uri("redis://127.0.0.1:6380/2");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "127.0.0.1");
    EXPECT_EQ(t->port, 6380);
    EXPECT_EQ(t->db, 2);
    EXPECT_EQ(userapi::core::parse_redis_uri("redis://cache")->port, 6379);
    EXPECT_EQ(userapi::core::parse_redis_uri("redis://[::1]:7000")->host, "::1");
    for (auto bad : {"http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://h/x", "redis://[::1"})
        EXPECT_FALSE(userapi::core::parse_redis_uri(bad)) << bad;
}
