// The cache's version order (contract 8.1) and its two LRUs (8.5), on a manual clock: every
// race here is an order of begin/end/heard calls the test chooses, as the DB queue's threads
// and the notification thread could make them.
#include "userapi/service/user_cache.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace std::chrono_literals;
using namespace userapi::service;

namespace {

cached_user user_at(std::int64_t id, std::int64_t version) {
    return {userapi::core::shared_bytes("{\"id\":" + std::to_string(id) + ",\"v\":" + std::to_string(version) + "}"),
            version};
}

class Cache : public ::testing::Test {
protected:
    userapi::core::manual_clock clock;
    user_cache cache{clock, 100, {60s, 5s, 0s, 10}};

    // What a GET would see: the version of a user, -N for a tombstone of N, 0 for "not found"
    // with no version, nullopt for a miss.
    std::optional<std::int64_t> seen(std::int64_t id) {
        auto c = cache.get(id);
        if (!c) return std::nullopt;
        return c->entry.exists() ? c->entry.version : -c->entry.version;
    }
};

}  // namespace

// Two PATCHes on two connections: the one committed last (v3) returns first; the slower v2
// arrives after it and is dropped.
TEST_F(Cache, SlowerOlderWriteIsDropped) {
    const auto a = cache.begin(1), b = cache.begin(1);
    EXPECT_TRUE(cache.end(b, user_at(1, 3)));
    EXPECT_FALSE(cache.end(a, user_at(1, 2)));
    EXPECT_EQ(seen(1), 3);
}

// The same with the newer entry evicted before the older write returns: the floor kept for
// the id while operations are in flight still drops it.
TEST_F(Cache, OlderWriteIsDroppedEvenWhenTheNewerEntryIsGone) {
    user_cache small{clock, 1, {60s, 5s, 0s, 10}};
    const auto a = small.begin(1), b = small.begin(1);
    EXPECT_TRUE(small.end(b, user_at(1, 3)));
    small.written(2, user_at(2, 1));  // evicts user 1
    ASSERT_FALSE(small.get(1));
    EXPECT_FALSE(small.end(a, user_at(1, 2)));
    EXPECT_FALSE(small.get(1)) << "the older write was stored once the newer entry was evicted";
}

// A DELETE (tombstone of v3) and a PATCH that committed v3 before it, returning after it:
// the tombstone wins, with negative caching on (404 from the cache) or off (nothing stored).
TEST_F(Cache, PatchReturningAfterTheDeleteIsDropped) {
    for (const bool negative : {true, false}) {
        user_cache c{clock, 100, {60s, negative ? 5s : 0s, 0s, 10}};
        c.written(4, user_at(4, 2));
        const auto patch = c.begin(4), del = c.begin(4);
        c.end(del, cached_user::deleted(3));
        EXPECT_FALSE(c.end(patch, user_at(4, 3))) << "negative caching " << negative;
        const auto now = c.get(4);
        if (negative) {
            ASSERT_TRUE(now);
            EXPECT_TRUE(now->entry.tombstone());
            EXPECT_EQ(now->entry.version, 3);
        } else {
            EXPECT_FALSE(now) << "a deleted user came back";
        }
    }
}

// A read that took its row before a write returns after it: dropped.
TEST_F(Cache, ReadOlderThanAWriteIsDropped) {
    cache.written(5, user_at(5, 1));
    const auto read = cache.begin(5);
    const auto write = cache.begin(5);
    cache.end(write, user_at(5, 2));
    EXPECT_FALSE(cache.end(read, user_at(5, 1)));
    EXPECT_EQ(seen(5), 2);
}

// A read of the same version renews the entry's TTL (a no-cache read refreshes it).
TEST_F(Cache, SameVersionRenewsTheTtl) {
    cache.written(6, user_at(6, 4));
    clock.advance(50s);
    EXPECT_TRUE(cache.end(cache.begin(6), user_at(6, 4)));
    clock.advance(50s);
    EXPECT_EQ(seen(6), 4) << "the TTL counts from the renewal";
    clock.advance(11s);
    EXPECT_FALSE(seen(6));
}

// Another instance's write (v2) heard while a read of v1 is in flight: the entry goes and the
// read's v1 is not stored. A late notification (v2 after our v3) changes nothing.
TEST_F(Cache, NotificationVersusRead) {
    cache.written(7, user_at(7, 1));
    const auto read = cache.begin(7);
    EXPECT_TRUE(cache.heard(7, 2, false));
    EXPECT_FALSE(seen(7)) << "the entry older than the notification stayed";
    EXPECT_FALSE(cache.end(read, user_at(7, 1)));
    EXPECT_FALSE(seen(7));
    EXPECT_TRUE(cache.end(cache.begin(7), user_at(7, 3)));
    EXPECT_FALSE(cache.heard(7, 2, false)) << "a late notification is no news";
    EXPECT_EQ(seen(7), 3);
}

// A delete heard from another instance is a tombstone; a PATCH notification of the version
// it deleted, arriving late, does not bring the user back.
TEST_F(Cache, HeardDeleteIsATombstone) {
    cache.written(8, user_at(8, 2));
    EXPECT_TRUE(cache.heard(8, 2, true));
    EXPECT_EQ(seen(8), -2);
    EXPECT_FALSE(cache.heard(8, 2, false));
    EXPECT_FALSE(cache.end(cache.begin(8), user_at(8, 2))) << "a read older than the delete";
    EXPECT_EQ(seen(8), -2);
}

// "Not found" from an operation that began while the user was known at v3: deleted since
// (ids are never reused), so it is a tombstone of v3 and replaces the user.
TEST_F(Cache, NotFoundOfAKnownUserIsATombstone) {
    cache.written(9, user_at(9, 3));
    EXPECT_TRUE(cache.end(cache.begin(9), cached_user{}));
    EXPECT_EQ(seen(9), -3);
}

// "Not found" from a read that began before the create: dropped, the created user stays.
TEST_F(Cache, NotFoundOlderThanACreateIsDropped) {
    const auto read = cache.begin(10);
    EXPECT_TRUE(cache.written(10, user_at(10, 1)));
    EXPECT_FALSE(cache.end(read, cached_user{}));
    EXPECT_EQ(seen(10), 1);
}

// A remembered not-found ends at once when the id is created.
TEST_F(Cache, CreateEndsANotFound) {
    EXPECT_TRUE(cache.end(cache.begin(11), cached_user{}));
    EXPECT_EQ(seen(11), 0);
    EXPECT_TRUE(cache.written(11, user_at(11, 1)));
    EXPECT_EQ(seen(11), 1);
}

// An unversioned write (an older instance's notification) voids what is in flight.
TEST_F(Cache, UnversionedInvalidationVoidsReadsInFlight) {
    const auto read = cache.begin(12);
    cache.invalidate(12);
    EXPECT_FALSE(cache.end(read, user_at(12, 9)));
    EXPECT_TRUE(cache.end(cache.begin(12), user_at(12, 9))) << "a read that began after it is stored";
}

// reset() (a deaf instance hears again) voids every read in flight; clear() (DELETE /cache)
// only empties the cache.
TEST_F(Cache, ResetVoidsReadsInFlightClearDoesNot) {
    const auto before_reset = cache.begin(13);
    cache.reset();
    EXPECT_FALSE(cache.end(before_reset, user_at(13, 1)));
    const auto before_clear = cache.begin(13);
    cache.clear();
    EXPECT_TRUE(cache.end(before_clear, user_at(13, 1)));
}

// Two writes of one user around a reset (found by the cluster's fault test): v2's began before
// the reset, v1's after it. v2's result is not stored (it began before), but it still says v1
// is old: v1 ending after it is dropped, and ending before it does not stay.
TEST_F(Cache, AResultVoidedByResetStillOrdersTheOthers) {
    const auto v2 = cache.begin(14);
    cache.reset();
    const auto v1 = cache.begin(14);
    EXPECT_FALSE(cache.end(v2, user_at(14, 2)));
    EXPECT_FALSE(cache.end(v1, user_at(14, 1))) << "older than a committed result";
    EXPECT_EQ(seen(14), std::nullopt);

    const auto w2 = cache.begin(15);
    cache.reset();
    const auto w1 = cache.begin(15);
    EXPECT_TRUE(cache.end(w1, user_at(15, 1)));
    EXPECT_FALSE(cache.end(w2, user_at(15, 2)));
    EXPECT_EQ(seen(15), std::nullopt) << "v1 stayed cached although v2 was committed";
}

// Finding 9 (contract 8.5): not-founds live in their own LRU of negative_capacity entries; a
// flood of unknown ids evicts no user.
TEST_F(Cache, NotFoundsNeverEvictUsers) {
    user_cache c{clock, 5, {60s, 5s, 0s, 3}};
    for (std::int64_t id = 1; id <= 5; ++id) c.written(id, user_at(id, 1));
    for (std::int64_t id = 1000; id < 1100; ++id) c.end(c.begin(id), cached_user{});
    for (std::int64_t id = 1; id <= 5; ++id) {
        auto e = c.get(id);
        ASSERT_TRUE(e) << "user " << id << " was evicted by not-founds";
        EXPECT_TRUE(e->entry.exists());
    }
    const auto s = c.stats();
    EXPECT_EQ(s.negative_size, 3u);
    EXPECT_EQ(s.size, 8u) << "size counts both kinds";
    EXPECT_EQ(s.evictions, 97u) << "evictions count both kinds";
    EXPECT_TRUE(c.get(1099)) << "the most recent not-found is remembered";
    EXPECT_FALSE(c.get(1000));
}

// Negative capacity 0: no not-found is kept, yet a delete still blocks what is in flight.
TEST_F(Cache, NegativeCapacityZeroKeepsNoneButStillOrders) {
    user_cache c{clock, 5, {60s, 5s, 0s, 0}};
    EXPECT_FALSE(c.end(c.begin(1), cached_user{}));
    EXPECT_FALSE(c.get(1));
    c.written(2, user_at(2, 1));
    const auto read = c.begin(2);
    c.written(2, cached_user::deleted(1));
    EXPECT_FALSE(c.get(2));
    EXPECT_FALSE(c.end(read, user_at(2, 1)));
    EXPECT_FALSE(c.get(2));
}

// A failed operation (nullopt) stores nothing and ends its flight: a later read stores.
TEST_F(Cache, FailedOperationStoresNothing) {
    EXPECT_FALSE(cache.end(cache.begin(14), std::nullopt));
    EXPECT_FALSE(seen(14));
    EXPECT_TRUE(cache.end(cache.begin(14), user_at(14, 1)));
}

// With a stale window, a stale entry keeps its version: an older result never replaces it.
TEST_F(Cache, StaleEntryStillOrders) {
    user_cache c{clock, 10, {10s, 0s, 30s, 10}};
    c.written(1, user_at(1, 5));
    clock.advance(15s);
    ASSERT_TRUE(c.get(1));
    EXPECT_TRUE(c.get(1)->stale);
    EXPECT_FALSE(c.end(c.begin(1), user_at(1, 4)));
    EXPECT_TRUE(c.end(c.begin(1), user_at(1, 5)));
    EXPECT_FALSE(c.get(1)->stale) << "the same version renewed it";
}
