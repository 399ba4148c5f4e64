#include "userapi/service/user_service.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "support/test_repository.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;

namespace {

// The service over a DB queue that only moves when the test runs `db` (no threads): what
// is in flight and what has completed is decided by the test, not by timing. Time moves
// only when the test advances the manual clock.
class UserService : public ::testing::Test {
protected:
    UserService() { seed_users(repo, 10); }

    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    userapi::testing::counting_repository repo;
    user_cache cache{clock, 100, {60s, 5s, 0s}};
    db_queue queue{db, clock, 0ms, 1000};
    user_service users{cache, queue, repo, clock};
    std::vector<reply> replies;

    user_service::callback record() {
        return [this](const reply& r) { replies.push_back(r); };
    }
    void run_db() {
        db.restart();
        db.run();
    }
    int count(outcome o) const {
        return static_cast<int>(std::count_if(replies.begin(), replies.end(), [o](auto& r) { return r.status == o; }));
    }
    int count(source s) const {
        return static_cast<int>(std::count_if(replies.begin(), replies.end(), [s](auto& r) { return r.from == s; }));
    }
    // A GET as the HTTP layer makes it, run to its answer.
    reply get_now(std::int64_t id) {
        users.get(id, record());
        run_db();
        return replies.back();
    }
    std::string name_in(const reply& r) const {
        const auto j = r.user.json.view();
        const auto at = j.find("\"name\":\"");
        return std::string(j.substr(at + 8, j.find('"', at + 8) - at - 8));
    }
};

}  // namespace

// 100 concurrent misses for one id: one read, one MISS, 99 COALESCED, all with the user.
TEST_F(UserService, HundredConcurrentMissesOneRead) {
    for (int i = 0; i < 100; ++i) users.get(7, record());
    EXPECT_EQ(users.stats().inflight, 1u);
    EXPECT_TRUE(replies.empty());
    run_db();
    ASSERT_EQ(replies.size(), 100u);
    EXPECT_EQ(repo.finds, 1);
    EXPECT_EQ(count(source::miss), 1);
    EXPECT_EQ(count(source::coalesced), 99);
    for (const auto& r : replies) {
        EXPECT_EQ(r.status, outcome::ok);
        EXPECT_EQ(r.user.json.view(), R"({"id":7,"name":"User 7","email":"user7@example.com"})");
        EXPECT_EQ(r.user.version, 1);
    }
    const auto s = users.stats();
    EXPECT_EQ(s.misses, 100u) << "coalesced waiters are misses";
    EXPECT_EQ(s.coalesced, 99u);
    EXPECT_EQ(s.reads, 1u);
    EXPECT_EQ(s.inflight, 0u);
}

// After the read, the user is cached: the next get is a HIT without a read.
TEST_F(UserService, ReadFillsCache) {
    get_now(3);
    EXPECT_EQ(get_now(3).from, source::hit);
    EXPECT_EQ(repo.finds, 1);
    EXPECT_EQ(users.stats().hits, 1u);
}

// Not found reaches every waiter, and is remembered for the negative TTL: the next 404 is a
// HIT with no read, until the TTL passes.
TEST_F(UserService, NotFoundIsRememberedForTheNegativeTtl) {
    for (int i = 0; i < 5; ++i) users.get(999, record());
    run_db();
    EXPECT_EQ(count(outcome::not_found), 5);
    EXPECT_EQ(repo.finds, 1);
    auto again = get_now(999);
    EXPECT_EQ(again.status, outcome::not_found);
    EXPECT_EQ(again.from, source::hit);
    EXPECT_EQ(repo.finds, 1);
    EXPECT_EQ(users.stats().negative_hits, 1u);
    EXPECT_EQ(users.stats().cache.negative_size, 1u);
    clock.advance(5s);
    EXPECT_EQ(get_now(999).from, source::miss);
    EXPECT_EQ(repo.finds, 2);
}

// With the negative TTL at 0, nothing is remembered.
TEST_F(UserService, NegativeTtlZeroRemembersNothing) {
    user_cache plain{clock, 100, {60s, 0s, 0s}};
    user_service svc{plain, queue, repo, clock};
    for (int i = 0; i < 2; ++i) {
        svc.get(999, record());
        run_db();
    }
    EXPECT_EQ(repo.finds, 2);
    EXPECT_EQ(plain.stats().negative_size, 0u);
}

// Creating the id a 404 remembered ends it at once.
TEST_F(UserService, CreateEndsTheNegativeEntryOfItsId) {
    EXPECT_EQ(get_now(11).status, outcome::not_found);
    users.create({"Eleven", "eleven@example.org"}, record());
    run_db();
    ASSERT_EQ(replies.back().id, 11);
    auto r = get_now(11);
    EXPECT_EQ(r.status, outcome::ok);
    EXPECT_EQ(r.from, source::hit);
    EXPECT_EQ(repo.finds, 1);
}

// A failed read reaches every waiter as unavailable, is never cached, and leaves no stuck
// key: the next request reads again.
TEST_F(UserService, FailedReadIsNotCachedAndKeyIsFreed) {
    repo.fail_finds = true;
    for (int i = 0; i < 3; ++i) users.get(4, record());
    run_db();
    EXPECT_EQ(count(outcome::unavailable), 3);
    EXPECT_EQ(users.stats().inflight, 0u);
    EXPECT_EQ(users.stats().cache.size, 0u);
    repo.fail_finds = false;
    EXPECT_EQ(get_now(4).from, source::miss);
    EXPECT_EQ(repo.finds, 2);
}

// The user is in the cache before the in-flight entry goes: a request that arrives the
// moment the read completes (here: from inside a waiter) is a HIT, never a second read.
TEST_F(UserService, NoSecondReadSlipsInAfterCompletion) {
    users.get(5, [this](const reply&) {
        EXPECT_EQ(users.stats().cache.size, 1u);
        users.get(5, record());
    });
    run_db();
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].from, source::hit);
    EXPECT_EQ(repo.finds, 1);
}

// A write replaces the cached entry before it is answered: the next read sees the new
// version at once, from the cache.
TEST_F(UserService, PatchReplacesTheCachedEntry) {
    get_now(2);
    users.update(2, {std::string("Renamed"), std::nullopt}, {}, record());
    run_db();
    ASSERT_EQ(replies.back().status, outcome::ok);
    EXPECT_EQ(replies.back().user.version, 2);
    auto r = get_now(2);
    EXPECT_EQ(r.from, source::hit);
    EXPECT_EQ(name_in(r), "Renamed");
    EXPECT_EQ(r.user.version, 2);
}

// Delete: the cached user is replaced by a not-found at once.
TEST_F(UserService, DeleteRemovesTheUserAtOnce) {
    get_now(6);
    users.remove(6, {}, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::ok);
    auto r = get_now(6);
    EXPECT_EQ(r.status, outcome::not_found);
    EXPECT_EQ(r.from, source::hit);
    users.remove(6, {}, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::not_found);
}

// If-Match that names another version: 412's outcome, nothing written, the cache untouched.
TEST_F(UserService, PreconditionFailureWritesNothing) {
    precondition stale;
    stale.any = false;
    stale.versions = {7};
    users.update(1, {std::string("Never")}, stale, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::precondition_failed);
    EXPECT_EQ(repo.inner.find(1)->name, "User 1");
    EXPECT_EQ(repo.inner.find(1)->version, 1);
    precondition current;
    current.any = false;
    current.versions = {1};
    users.remove(1, stale, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::precondition_failed);
    users.remove(1, current, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::ok);
}

namespace {

// The race of contract 6.6 on a real queue with two connections (two DB threads): a read of
// the user takes its row from the store, then is held at a latch while a write of the same
// user commits and is answered on the other connection; then the read goes on.
class CoherenceRace : public ::testing::Test {
protected:
    CoherenceRace() {
        seed_users(repo, 10);
        repo.on_find = [this](std::int64_t) {
            if (held.exchange(true)) return;
            {
                std::lock_guard lock(mu);
                reading = true;
            }
            cv.notify_all();
            std::unique_lock lock(mu);
            cv.wait_for(lock, 10s, [this] { return released; });
        };
        for (int i = 0; i < 2; ++i) threads.emplace_back([this] { db.run(); });
    }
    ~CoherenceRace() override {
        release();
        guard.reset();
        for (auto& t : threads) t.join();
    }
    void wait_until_reading() {
        std::unique_lock lock(mu);
        ASSERT_TRUE(cv.wait_for(lock, 10s, [this] { return reading; }));
    }
    void release() {
        {
            std::lock_guard lock(mu);
            released = true;
        }
        cv.notify_all();
    }
    // Calls `start(callback)` and waits for its reply.
    template <class Start>
    reply await(Start start) {
        auto p = std::make_shared<std::promise<reply>>();
        auto f = p->get_future();
        start([p](const reply& r) { p->set_value(r); });
        EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
        return f.get();
    }

    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard{db.get_executor()};
    userapi::testing::counting_repository repo;
    user_cache cache{clock, 100, {60s, 0s, 0s}};  // no negative entries: a delete leaves nothing behind
    db_queue queue{db, clock, 0ms, 100, 2};
    user_service users{cache, queue, repo, clock};
    std::mutex mu;
    std::condition_variable cv;
    std::atomic<bool> held{false};
    bool reading = false, released = false;  // guarded by mu
    std::vector<std::thread> threads;
};

}  // namespace

// A patch committed while an older read was on its way: the patch's value stays in the cache,
// and a request that arrives after the patch's answer gets the new user, never the old one.
TEST_F(CoherenceRace, ReadOlderThanAPatchIsNeverStoredOverIt) {
    std::promise<reply> early;
    users.get(8, [&](const reply& r) { early.set_value(r); });
    wait_until_reading();
    auto patched = await([&](auto done) { users.update(8, {std::string("New Name")}, {}, done); });
    ASSERT_EQ(patched.status, outcome::ok);
    auto after = await([&](auto done) { users.get(8, done); });
    EXPECT_NE(after.user.json.view().find("New Name"), std::string::npos)
        << "a request after the patch got the old user";
    release();
    auto first = early.get_future().get();
    EXPECT_NE(first.user.json.view().find("User 8"), std::string::npos) << "the early waiter gets what its read saw";
    auto cached = cache.get(8);
    ASSERT_TRUE(cached);
    EXPECT_NE(cached->entry.json.view().find("New Name"), std::string::npos)
        << "the older read was stored over the patch";
    EXPECT_EQ(cached->entry.version, 2);
}

// The same with a delete: after its 204, nobody gets the user, and the old read leaves nothing.
TEST_F(CoherenceRace, ReadOlderThanADeleteIsNeverStored) {
    std::promise<reply> early;
    users.get(9, [&](const reply& r) { early.set_value(r); });
    wait_until_reading();
    ASSERT_EQ(await([&](auto done) { users.remove(9, {}, done); }).status, outcome::ok);
    EXPECT_EQ(await([&](auto done) { users.get(9, done); }).status, outcome::not_found)
        << "a request after the delete joined the older read";
    release();
    EXPECT_EQ(early.get_future().get().status, outcome::ok);
    EXPECT_FALSE(cache.get(9)) << "the older read was stored after the delete";
}

// Stale-while-revalidate: past the TTL, inside the stale window, the entry is answered STALE
// at once and exactly one background refresh runs; its value replaces the entry.
TEST_F(UserService, StaleIsServedWhileOneRefreshRuns) {
    user_cache swr{clock, 100, {60s, 5s, 30s}};
    user_service svc{swr, queue, repo, clock};
    svc.get(3, record());
    run_db();
    repo.inner.update(3, {std::string("Fresher")}, {});
    clock.advance(61s);
    for (int i = 0; i < 5; ++i) {
        auto c = svc.find_cached(3);
        ASSERT_TRUE(c);
        EXPECT_TRUE(c->stale);
        EXPECT_NE(c->entry.json.view().find("User 3"), std::string::npos);
    }
    EXPECT_EQ(svc.stats().refreshes, 1u) << "one refresh, however many stale answers";
    EXPECT_EQ(svc.stats().stale_served, 5u);
    run_db();
    EXPECT_EQ(repo.finds, 2);
    auto c = svc.find_cached(3);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->stale);
    EXPECT_NE(c->entry.json.view().find("Fresher"), std::string::npos);
}

// Stale-if-error: a failed refresh keeps the stale entry until its window ends; then a failed
// read is a 503's outcome as before, and the sweeper counts the entry as expired.
TEST_F(UserService, FailedRefreshKeepsServingStaleUntilTheWindowEnds) {
    user_cache swr{clock, 100, {60s, 5s, 30s}};
    user_service svc{swr, queue, repo, clock};
    svc.get(4, record());
    run_db();
    repo.fail_finds = true;
    clock.advance(61s);
    ASSERT_TRUE(svc.find_cached(4));
    run_db();  // the refresh fails
    auto c = svc.find_cached(4);
    ASSERT_TRUE(c) << "a failed refresh dropped the stale entry";
    EXPECT_TRUE(c->stale);
    run_db();
    EXPECT_EQ(svc.stats().refreshes, 2u) << "each stale answer after a failure may try again, one at a time";
    clock.advance(29s);  // 90 s: TTL + stale window have passed
    EXPECT_FALSE(svc.find_cached(4));
    svc.get(4, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::unavailable);
    EXPECT_EQ(swr.stats().expirations, 1u);
}

// The sweeper honours TTL + stale time.
TEST_F(UserService, SweeperKeepsStaleEntriesUntilTheirWindowEnds) {
    user_cache swr{clock, 100, {60s, 5s, 30s}};
    user_service svc{swr, queue, repo, clock};
    svc.get(5, record());
    run_db();
    clock.advance(70s);
    EXPECT_EQ(svc.sweep_cache(), 0u);
    clock.advance(20s);
    EXPECT_EQ(svc.sweep_cache(), 1u);
}

// Racing threads on fresh ids: whatever the interleaving, each id is read exactly once.
TEST_F(UserService, RacingThreadsReadEachIdOnce) {
    std::atomic<bool> stop{false};
    std::thread db_thread([&] {
        auto guard = boost::asio::make_work_guard(db);
        while (!stop) db.run_for(1ms);
    });
    constexpr int kIds = 10, kThreads = 4;
    std::atomic<int> answered{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            for (int id = 1; id <= kIds; ++id) {
                std::atomic<bool> got{false};
                users.get(id, [&](const reply&) { got = true; });
                while (!got) std::this_thread::yield();
                ++answered;
            }
        });
    for (auto& t : threads) t.join();
    stop = true;
    db_thread.join();
    EXPECT_EQ(answered, kIds * kThreads);
    EXPECT_EQ(repo.finds, kIds);
}

// A refused DB operation answers queue_full and frees the key.
TEST_F(UserService, QueueFullFreesKey) {
    db_queue tiny(db, clock, 0ms, 0);
    user_service svc(cache, tiny, repo, clock);
    svc.get(1, record());  // admitted: the one running slot
    svc.get(2, record());  // refused
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].status, outcome::queue_full);
    EXPECT_EQ(svc.stats().inflight, 1u);
    run_db();
    EXPECT_EQ(svc.stats().inflight, 0u);
}

// A failed write answers unavailable and stores nothing.
TEST_F(UserService, FailedWriteIsUnavailable) {
    repo.fail_writes = true;
    users.create({"X", "x@example.org"}, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::unavailable);
    EXPECT_FALSE(replies.back().error.empty());
    EXPECT_EQ(users.stats().cache.size, 0u);
}

// An operation still queued past the request timeout never runs: its waiters hear timed_out.
// The deadline is read from the injected clock, so the test moves time instead of waiting.
TEST_F(UserService, QueuedPastItsDeadlineIsDroppedUnrun) {
    user_service svc(cache, queue, repo, clock, 1s);
    svc.get(3, record());
    svc.update(3, {std::string("Late")}, {}, record());
    clock.advance(2s);
    run_db();
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[0].status, outcome::timed_out);
    EXPECT_EQ(replies[1].status, outcome::timed_out);
    EXPECT_EQ(repo.finds, 0) << "an expired read reached the store";
    EXPECT_EQ(repo.updates, 0) << "an expired write reached the store";
    EXPECT_EQ(svc.stats().inflight, 0u);
}

// Listing pages through the queue in id order.
TEST_F(UserService, ListReadsAPage) {
    page got;
    users.list(3, 4, [&](const page& p) { got = p; });
    run_db();
    ASSERT_EQ(got.status, outcome::ok);
    ASSERT_EQ(got.users.size(), 4u);
    EXPECT_EQ(got.users.front().id, 4);
    EXPECT_EQ(got.users.back().id, 7);
}

// While the instance cannot hear other instances' writes, the store answers every read; a
// cached user is served (STALE) only when the store cannot answer either; once it hears again
// it starts from an empty cache.
TEST_F(UserService, WhileDeafTheStoreDecidesAndTheCacheIsTheLastResort) {
    get_now(3);
    users.set_coherent(false);
    EXPECT_FALSE(users.find_cached(3)) << "the cache answered while deaf";
    EXPECT_EQ(get_now(3).from, source::miss);
    EXPECT_EQ(repo.finds, 2);
    repo.fail_finds = true;
    auto fallback = get_now(3);
    EXPECT_EQ(fallback.status, outcome::ok);
    EXPECT_EQ(fallback.from, source::stale);
    EXPECT_EQ(get_now(42).status, outcome::unavailable) << "no cached user: nothing to fall back on";
    users.set_coherent(true);
    EXPECT_EQ(get_now(3).status, outcome::unavailable) << "the cache was not emptied on hearing again";
}
