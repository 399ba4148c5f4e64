// The migrate check's checksum: the same users in the same order give the same value, and any
// change to a user, to the order, or to where one field ends and the next begins changes it.
#include "userapi/service/user_checksum.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace userapi::service;

namespace {

user_checksum of(const std::vector<user>& users) {
    user_checksum c;
    for (const auto& u : users) c.add(u);
    return c;
}

const std::vector<user> kUsers = {{1, "Ada", "ada@example.org", 1}, {4, "Bob 😀", "bob@example.org", 3}};

}  // namespace

TEST(UserChecksum, SameUsersSameValue) {
    EXPECT_EQ(of(kUsers), of(kUsers));
    EXPECT_EQ(of(kUsers).count(), 2);
    EXPECT_EQ(of(kUsers).hex().size(), 16u);
    EXPECT_NE(of({}).value(), of(kUsers).value());
}

TEST(UserChecksum, AnyFieldChangesIt) {
    const auto base = of(kUsers).value();
    for (int field = 0; field < 4; ++field) {
        auto changed = kUsers;
        auto& u = changed[1];
        if (field == 0) u.id = 5;
        if (field == 1) u.version = 4;
        if (field == 2) u.name = "Bob 😁";
        if (field == 3) u.email = "Bob@example.org";  // case matters: the copy must be exact
        EXPECT_NE(of(changed).value(), base) << "field " << field;
    }
}

TEST(UserChecksum, OrderAndFieldBoundariesCount) {
    EXPECT_NE(of({kUsers[1], kUsers[0]}).value(), of(kUsers).value());
    EXPECT_NE(of({{1, "ab", "c@d.ef", 1}}).value(), of({{1, "a", "bc@d.ef", 1}}).value());
}
