#include "userapi/service/user_service.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <thread>
#include <vector>

#include "support/test_repository.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;

namespace {

// The service over a DB queue that only moves when the test runs `db` (no threads): what
// is in flight and what has completed is decided by the test, not by timing.
class UserService : public ::testing::Test {
protected:
    UserService() { seed_users(repo, 10); }

    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    userapi::testing::counting_repository repo;
    user_cache cache{clock, 100, 60s};
    db_queue queue{db, clock, 0ms, 1000};
    user_service users{cache, queue, repo, clock};
    std::vector<user_reply> replies;

    user_service::callback record() {
        return [this](const user_reply& r) { replies.push_back(r); };
    }
    void run_db() {
        db.restart();
        db.run();
    }
    int count(outcome o) const {
        return static_cast<int>(std::count_if(replies.begin(), replies.end(), [o](auto& r) { return r.status == o; }));
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
    EXPECT_EQ(count(outcome::miss), 1);
    EXPECT_EQ(count(outcome::coalesced), 99);
    for (const auto& r : replies) EXPECT_EQ(r.json.view(), R"({"id":7,"name":"User 7","email":"user7@example.com"})");
    const auto s = users.stats();
    EXPECT_EQ(s.misses, 100u) << "coalesced waiters are misses";
    EXPECT_EQ(s.coalesced, 99u);
    EXPECT_EQ(s.reads, 1u);
    EXPECT_EQ(s.inflight, 0u);
}

// After the read, the user is cached: the next get is a HIT without a read.
TEST_F(UserService, ReadFillsCache) {
    users.get(3, record());
    run_db();
    users.get(3, record());
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[1].status, outcome::hit);
    EXPECT_EQ(repo.finds, 1);
    EXPECT_EQ(users.stats().hits, 1u);
}

// Not found reaches every waiter and is not cached.
TEST_F(UserService, NotFoundReachesAllWaiters) {
    for (int i = 0; i < 5; ++i) users.get(999, record());
    run_db();
    EXPECT_EQ(count(outcome::not_found), 5);
    EXPECT_EQ(repo.finds, 1);
    users.get(999, record());
    run_db();
    EXPECT_EQ(repo.finds, 2);
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
    users.get(4, record());
    run_db();
    EXPECT_EQ(replies.back().status, outcome::miss);
    EXPECT_EQ(repo.finds, 2);
}

// The user is in the cache before the in-flight entry goes: a request that arrives the
// moment the read completes (here: from inside a waiter) is a HIT, never a second read.
TEST_F(UserService, NoSecondReadSlipsInAfterCompletion) {
    users.get(5, [this](const user_reply&) {
        EXPECT_EQ(users.stats().cache.size, 1u);
        users.get(5, record());
    });
    run_db();
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].status, outcome::hit);
    EXPECT_EQ(repo.finds, 1);
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
                users.get(id, [&](const user_reply&) { got = true; });
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

// A created user is written through the queue and cached; its email is then taken.
TEST_F(UserService, CreateCachesAndRejectsDuplicateEmail) {
    users.create({"Ada", "ada@example.org"}, record());
    EXPECT_TRUE(replies.empty()) << "a write waits for the queue";
    run_db();
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].status, outcome::created);
    EXPECT_EQ(replies[0].id, 11);
    EXPECT_TRUE(users.find_cached(11));
    users.create({"Ada 2", "ADA@example.org"}, record());
    run_db();
    EXPECT_EQ(replies[1].status, outcome::email_taken);
    EXPECT_EQ(users.stats().writes, 2u);
}

// A failed write answers unavailable and stores nothing.
TEST_F(UserService, FailedWriteIsUnavailable) {
    repo.fail_creates = true;
    users.create({"Bob", "bob@example.org"}, record());
    run_db();
    EXPECT_EQ(replies.at(0).status, outcome::unavailable);
    EXPECT_EQ(repo.size(), 10u);
}

// The TTL is read from the injected clock: an expired user is read again.
TEST_F(UserService, ExpiredEntryIsReadAgain) {
    users.get(2, record());
    run_db();
    clock.advance(60s);
    users.get(2, record());
    run_db();
    EXPECT_EQ(replies[1].status, outcome::miss);
    EXPECT_EQ(repo.finds, 2);
    EXPECT_EQ(users.stats().cache.expirations, 1u);
}

// An operation still queued past the request timeout never runs: its waiters hear timed_out.
// The deadline is read from the injected clock, so the test moves time instead of waiting.
TEST_F(UserService, QueuedPastItsDeadlineIsDroppedUnrun) {
    user_service svc(cache, queue, repo, clock, 1s);
    svc.get(3, record());
    clock.advance(2s);
    run_db();
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].status, outcome::timed_out);
    EXPECT_EQ(repo.finds, 0) << "an expired read reached the store";
    EXPECT_EQ(svc.stats().inflight, 0u);
}
