#include "userapi/core/single_flight.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using flight = userapi::core::single_flight<int, std::string>;

namespace {

struct recorder {
    std::vector<std::string> results;
    std::vector<bool> leaders;
    flight::waiter waiter() {
        return [this](const std::string& r, bool leader) {
            results.push_back(r);
            leaders.push_back(leader);
        };
    }
};

}  // namespace

// The first caller leads; the others only join, and all get the one result.
TEST(SingleFlight, NWaitersOneLoad) {
    flight f;
    recorder rec;
    auto first = f.join(7, rec.waiter());
    ASSERT_TRUE(first.leader());
    for (int i = 0; i < 99; ++i) EXPECT_FALSE(f.join(7, rec.waiter()).leader());
    EXPECT_EQ(f.inflight(), 1u);
    EXPECT_EQ(f.coalesced(), 99u);
    EXPECT_TRUE(rec.results.empty()) << "nobody is answered before the load completes";
    f.complete(first.leader_of, "user 7");
    ASSERT_EQ(rec.results.size(), 100u);
    for (const auto& r : rec.results) EXPECT_EQ(r, "user 7");
    EXPECT_TRUE(rec.leaders[0]);
    EXPECT_EQ(std::count(rec.leaders.begin(), rec.leaders.end(), true), 1);
    EXPECT_EQ(f.inflight(), 0u);
}

// An error is a result like any other: every waiter gets it, and the key is free again.
TEST(SingleFlight, ErrorReachesAllAndNextCallStartsFresh) {
    flight f;
    recorder rec;
    auto first = f.join(1, rec.waiter());
    f.join(1, rec.waiter());
    f.complete(first.leader_of, "error");
    EXPECT_EQ(rec.results, (std::vector<std::string>{"error", "error"}));
    EXPECT_TRUE(f.join(1, rec.waiter()).leader()) << "a failed load is not remembered";
}

// Different keys do not coalesce.
TEST(SingleFlight, KeysAreIndependent) {
    flight f;
    recorder rec;
    EXPECT_TRUE(f.join(1, rec.waiter()).leader());
    EXPECT_TRUE(f.join(2, rec.waiter()).leader());
    EXPECT_EQ(f.inflight(), 2u);
    EXPECT_EQ(f.coalesced(), 0u);
}

// Completing an old call never removes a newer call for the same key.
TEST(SingleFlight, CompleteRemovesOnlyItsOwnCall) {
    flight f;
    recorder rec;
    auto old_call = f.join(1, rec.waiter()).leader_of;
    f.complete(old_call, "first");
    auto new_call = f.join(1, rec.waiter()).leader_of;
    ASSERT_TRUE(new_call);
    f.complete(old_call, "stale");  // e.g. a duplicate completion
    EXPECT_EQ(f.inflight(), 1u);
    EXPECT_FALSE(f.join(1, rec.waiter()).leader());
    f.complete(new_call, "second");
    EXPECT_EQ(rec.results, (std::vector<std::string>{"first", "second", "second"}));
}

// Waiters run outside the lock: a waiter may join again (here: starts the next load).
TEST(SingleFlight, WaiterMayJoinAgain) {
    flight f;
    flight::call_ptr next;
    auto first =
        f.join(1, [&](const std::string&, bool) { next = f.join(1, [](const std::string&, bool) {}).leader_of; });
    f.complete(first.leader_of, "done");
    EXPECT_TRUE(next) << "the key was free when the waiter ran";
}

// After forget(), the call in flight keeps its waiters, but new callers lead a fresh load.
TEST(SingleFlight, ForgetLetsNewCallersStartAFreshLoad) {
    flight f;
    recorder rec;
    auto old_call = f.join(1, rec.waiter()).leader_of;
    EXPECT_FALSE(f.join(1, rec.waiter()).leader());
    f.forget(1);
    auto fresh = f.join(1, rec.waiter()).leader_of;
    ASSERT_TRUE(fresh) << "a caller after forget() waited for the old load";
    f.complete(old_call, "old");
    EXPECT_EQ(f.inflight(), 1u) << "completing the old call removed the fresh one";
    f.complete(fresh, "new");
    EXPECT_EQ(rec.results, (std::vector<std::string>{"old", "old", "new"}));
}

// A background refresh leads only when nothing is in flight, and has no waiter of its own.
TEST(SingleFlight, LeadIfIdle) {
    flight f;
    recorder rec;
    auto refresh = f.lead_if_idle(1);
    ASSERT_TRUE(refresh);
    EXPECT_FALSE(f.lead_if_idle(1)) << "two refreshes at once";
    EXPECT_FALSE(f.join(1, rec.waiter()).leader()) << "a read joins the refresh";
    f.complete(refresh, "fresh");
    EXPECT_EQ(rec.results, (std::vector<std::string>{"fresh"}));
    EXPECT_EQ(f.inflight(), 0u);
}
