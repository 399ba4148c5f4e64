// Batched reads (--db-batch-reads, issue 20): cold reads of distinct ids share one DB-queue
// operation, never past a write, and each id's waiters get their own result.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "support/test_repository.hpp"
#include "userapi/service/read_watchdog.hpp"
#include "userapi/service/user_service.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;

namespace {

// The service over a DB queue batching up to 64 reads, that only moves when the test runs
// `db`: everything submitted before run_db() is in the queue (or in the batch its first read
// opened) before any latency ends.
class BatchedReads : public ::testing::Test {
protected:
    BatchedReads() { seed_users(repo, 20); }

    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    userapi::testing::counting_repository repo;
    user_cache cache{clock, 100, {60s, 5s, 0s, 100}};
    db_queue queue{db, clock, 0ms, 1000, 1, 64};
    user_service users{cache, queue, repo, clock};
    std::vector<std::pair<std::int64_t, reply>> replies;  // (id, its reply), in answer order

    user_service::callback record(std::int64_t id) {
        return [this, id](const reply& r) { replies.emplace_back(id, r); };
    }
    void run_db() {
        db.restart();
        db.run();
    }
    const reply& reply_of(std::int64_t id) const {
        for (const auto& [i, r] : replies)
            if (i == id) return r;
        throw std::logic_error("no reply for " + std::to_string(id));
    }
    static std::string user_json(std::int64_t id) {
        const auto s = std::to_string(id);
        return R"({"id":)" + s + R"(,"name":"User )" + s + R"(","email":"user)" + s + R"(@example.com"})";
    }
    std::vector<std::string> store_history() {
        auto h = repo.history();
        h.erase(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(seeded_));
        return h;
    }
    std::size_t seeded_ = 0;
    void SetUp() override { seeded_ = repo.history().size(); }
};

}  // namespace

// Ten concurrent cold reads of distinct ids: one operation, one statement, each its own user.
TEST_F(BatchedReads, DistinctColdReadsShareOneOperation) {
    for (std::int64_t id = 1; id <= 10; ++id) users.get(id, record(id));
    run_db();
    ASSERT_EQ(replies.size(), 10u);
    EXPECT_EQ(repo.find_manys, 1);
    EXPECT_EQ(repo.finds, 0);
    EXPECT_EQ(store_history(), std::vector<std::string>{"read 1 2 3 4 5 6 7 8 9 10"});
    for (std::int64_t id = 1; id <= 10; ++id) {
        const auto& r = reply_of(id);
        EXPECT_EQ(r.status, outcome::ok);
        EXPECT_EQ(r.from, source::miss);
        EXPECT_EQ(r.user.json.view(), user_json(id));
        EXPECT_EQ(users.find_cached(id)->entry.json.view(), user_json(id)) << "cached as read";
    }
    const auto s = users.stats();
    EXPECT_EQ(s.reads, 1u) << "db.reads counts operations";
    EXPECT_EQ(s.batched_ids, 10u) << "db.batched_ids counts ids";
    EXPECT_EQ(s.queue_depth, 0u);
}

// Coalescing still holds per id: several waiters of one id in a batch read it once, the
// first MISS and the others COALESCED.
TEST_F(BatchedReads, CoalescingHoldsPerId) {
    for (int i = 0; i < 3; ++i) users.get(4, record(4));
    users.get(5, record(5));
    for (int i = 0; i < 2; ++i) users.get(6, record(6));
    run_db();
    ASSERT_EQ(replies.size(), 6u);
    EXPECT_EQ(store_history(), std::vector<std::string>{"read 4 5 6"});
    int coalesced = 0;
    for (const auto& [id, r] : replies) {
        EXPECT_EQ(r.user.json.view(), user_json(id));
        coalesced += r.from == source::coalesced;
    }
    EXPECT_EQ(coalesced, 3);
    EXPECT_EQ(users.stats().batched_ids, 3u);
}

// A missing id among them gets its 404 and its negative entry; the others their users.
TEST_F(BatchedReads, MissingIdGetsItsNotFoundAndNegativeEntry) {
    for (std::int64_t id : {1, 2, 999, 3}) users.get(id, record(id));
    run_db();
    ASSERT_EQ(replies.size(), 4u);
    EXPECT_EQ(repo.find_manys, 1);
    EXPECT_EQ(reply_of(999).status, outcome::not_found);
    for (std::int64_t id : {1, 2, 3}) EXPECT_EQ(reply_of(id).user.json.view(), user_json(id));
    const auto negative = cache.get(999);
    ASSERT_TRUE(negative) << "the not-found is remembered";
    EXPECT_FALSE(negative->entry.exists());
    replies.clear();
    users.get(999, record(999));
    ASSERT_EQ(replies.size(), 1u) << "answered from the negative entry, no operation";
    EXPECT_EQ(replies[0].second.status, outcome::not_found);
    EXPECT_EQ(replies[0].second.from, source::hit);
    EXPECT_EQ(users.stats().reads, 1u);
}

// A failing batch fails each waiter (503, the handler's answer to `unavailable`) and caches
// nothing: the next request reads again.
TEST_F(BatchedReads, FailingBatchFailsEveryWaiterAndCachesNothing) {
    repo.fail_finds = true;
    for (std::int64_t id = 1; id <= 5; ++id) users.get(id, record(id));
    users.get(3, record(3));
    run_db();
    ASSERT_EQ(replies.size(), 6u);
    for (const auto& [id, r] : replies) {
        EXPECT_EQ(r.status, outcome::unavailable) << id;
        EXPECT_FALSE(r.error.empty());
    }
    EXPECT_EQ(cache.stats().size, 0u);
    EXPECT_EQ(users.stats().inflight, 0u);
    repo.fail_finds = false;
    replies.clear();
    users.get(3, record(3));
    run_db();
    EXPECT_EQ(reply_of(3).status, outcome::ok);
    EXPECT_EQ(reply_of(3).from, source::miss);
    EXPECT_EQ(repo.find_manys + repo.finds, 2);
}

// A write between reads splits the batch, in arrival order: the reads before it (the first
// opened a batch, the second joined it during its latency) are one operation, then the write,
// then the reads after it, which see what it wrote.
TEST_F(BatchedReads, WriteBetweenReadsSplitsTheBatchInArrivalOrder) {
    users.get(1, record(1));
    users.get(2, record(2));
    users.update(3, {std::string("Patched")}, {}, record(-3));
    users.get(3, record(3));
    users.get(4, record(4));
    run_db();
    EXPECT_EQ(store_history(), (std::vector<std::string>{"read 1 2", "update 3", "read 3 4"}));
    ASSERT_EQ(replies.size(), 5u);
    EXPECT_EQ(reply_of(3).user.version, 2) << "a read queued after the write overtook it";
    EXPECT_NE(reply_of(3).user.json.view().find("Patched"), std::string::npos);
    std::vector<std::int64_t> order;
    for (const auto& [id, r] : replies) order.push_back(id);
    EXPECT_EQ(order, (std::vector<std::int64_t>{1, 2, -3, 3, 4}));
    EXPECT_EQ(users.stats().reads, 2u);
}

// Reads waiting behind a write when their turn comes are gathered at once, up to the next
// write; none is pulled in front of it.
TEST_F(BatchedReads, WaitingReadsAreGatheredUpToTheNextWrite) {
    users.update(9, {std::string("First")}, {}, record(-9));
    users.get(1, record(1));
    users.get(2, record(2));
    users.get(5, record(5));
    users.update(8, {std::string("Second")}, {}, record(-8));
    users.get(8, record(8));
    users.get(6, record(6));
    run_db();
    EXPECT_EQ(store_history(), (std::vector<std::string>{"update 9", "read 1 2 5", "update 8", "read 8 6"}));
    EXPECT_EQ(reply_of(8).user.version, 2);
}

// With two slots a write takes the free one at once, while a batch is in its latency on the
// other: a read arriving after the write does not join that batch (it would read the store
// before the write), it waits for a slot of its own and sees what the write wrote.
TEST(BatchedReadsTwoSlots, ReadAfterARunningWriteNeverJoinsAnOlderBatch) {
    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    userapi::testing::counting_repository repo;
    seed_users(repo, 20);
    user_cache cache{clock, 100, {60s, 5s, 0s, 100}};
    db_queue queue{db, clock, 0ms, 1000, 2, 64};
    user_service users{cache, queue, repo, clock};
    std::optional<reply> third;
    users.get(1, [](const reply&) {});
    users.update(3, {std::string("Patched")}, {}, [](const reply&) {});
    users.get(3, [&](const reply& r) { third = r; });
    users.get(4, [](const reply&) {});
    db.run();
    const auto h = repo.history();
    ASSERT_EQ(h.size(), 3u);
    // The batch and the write run at once on their two slots: either may reach the store first.
    EXPECT_EQ(std::set<std::string>(h.begin(), h.begin() + 2), (std::set<std::string>{"find 1", "update 3"}))
        << "a read that arrived after the write joined the batch opened before it";
    EXPECT_EQ(h[2], "read 3 4");
    ASSERT_TRUE(third);
    EXPECT_EQ(third->user.version, 2);
}

// At most N distinct ids per operation: the rest wait for the next one, in order.
TEST(BatchedReadsLimit, AtMostNIdsPerOperation) {
    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    userapi::testing::counting_repository repo;
    seed_users(repo, 20);
    const auto seeded = repo.history().size();
    user_cache cache{clock, 100, {60s, 5s, 0s, 100}};
    db_queue queue{db, clock, 0ms, 1000, 1, 3};
    user_service users{cache, queue, repo, clock};
    int answered = 0;
    for (std::int64_t id : {1, 2, 3, 4, 5, 6, 7})
        users.get(id, [&](const reply& r) { answered += r.status == outcome::ok; });
    db.run();
    EXPECT_EQ(answered, 7);
    auto h = repo.history();
    h.erase(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(seeded));
    EXPECT_EQ(h, (std::vector<std::string>{"read 1 2 3", "read 4 5 6", "find 7"}));
    EXPECT_EQ(users.stats().reads, 3u);
    EXPECT_EQ(users.stats().batched_ids, 7u);
}

// With the default (1) every read is an operation of its own, by find(): v1 exactly.
TEST(BatchedReadsLimit, DefaultReadsOneIdPerOperation) {
    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    userapi::testing::counting_repository repo;
    seed_users(repo, 20);
    user_cache cache{clock, 100, {60s, 5s, 0s, 100}};
    db_queue queue{db, clock, 0ms, 1000};
    user_service users{cache, queue, repo, clock};
    for (std::int64_t id : {1, 2, 3}) users.get(id, [](const reply&) {});
    db.run();
    EXPECT_EQ(repo.finds, 3);
    EXPECT_EQ(repo.find_manys, 0);
    EXPECT_EQ(users.stats().reads, 3u);
}

namespace {

// Version order (contract 8.1) for a batch racing a PATCH, on a real queue with two slots and
// threads: the batch reads its rows and is held at a latch on its way back while a PATCH of
// one of its ids commits and is answered on the other slot.
class BatchRace : public ::testing::Test {
protected:
    BatchRace() {
        seed_users(repo, 10);
        repo.on_find = [this](std::int64_t) {
            if (hold_reads) hold();
        };
        for (int i = 0; i < 2; ++i) threads.emplace_back([this] { db.run(); });
    }
    ~BatchRace() override {
        release();
        guard.reset();
        for (auto& t : threads) t.join();
    }
    void hold() {
        {
            std::lock_guard lock(mu);
            holding = true;
        }
        cv.notify_all();
        std::unique_lock lock(mu);
        cv.wait_for(lock, 10s, [this] { return released; });
    }
    void wait_until_held() {
        std::unique_lock lock(mu);
        ASSERT_TRUE(cv.wait_for(lock, 10s, [this] { return holding; }));
    }
    void release() {
        {
            std::lock_guard lock(mu);
            released = true;
        }
        cv.notify_all();
    }
    reply await(const std::function<void(user_service::callback)>& start) {
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
    user_cache cache{clock, 100, {60s, 5s, 0s, 100}};
    // A latency long enough that all three reads are in the batch before it ends.
    db_queue queue{db, clock, 500ms, 100, 2, 64};
    user_service users{cache, queue, repo, clock};
    std::mutex mu;
    std::condition_variable cv;
    std::atomic<bool> hold_reads{true};
    bool holding = false, released = false;  // guarded by mu
    std::vector<std::thread> threads;
};

}  // namespace

TEST_F(BatchRace, BatchOlderThanAPatchNeverStoresOverIt) {
    std::vector<std::promise<reply>> early(3);
    for (std::int64_t id : {4, 5, 6})
        users.get(id, [&early, id](const reply& r) { early[static_cast<std::size_t>(id - 4)].set_value(r); });
    wait_until_held();  // the batch has read 4, 5 and 6 at v1
    hold_reads = false;
    const auto patched = await([&](auto done) { users.update(5, {std::string("Newer")}, {}, done); });
    ASSERT_EQ(patched.status, outcome::ok);
    EXPECT_EQ(patched.user.version, 2);
    release();
    for (auto& e : early) EXPECT_EQ(e.get_future().get().user.version, 1) << "each read's own answer is what it read";
    EXPECT_EQ(repo.find_manys, 1);
    const auto after = await([&](auto done) { users.get(5, done); });
    EXPECT_EQ(after.from, source::hit);
    EXPECT_EQ(after.user.version, 2) << "the batch's older read of 5 was stored over the PATCH";
    EXPECT_EQ(await([&](auto done) { users.get(4, done); }).from, source::hit) << "the others were stored";
}

// Contract 8.4 for a batch: once its statement is sent, every waiter of every id in it is
// answered by the read timeout (503: not cached) if the store does not answer; what the late
// statement finds is still stored.
TEST(BatchedReadTimeout, EveryWaiterOfASilentBatchIsAnsweredAtTheReadTimeout) {
    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    auto work = boost::asio::make_work_guard(db);
    userapi::testing::counting_repository repo;
    seed_users(repo, 10);
    std::mutex mu;
    std::condition_variable cv;
    bool holding = true;
    int answered = 0;  // guarded by mu
    repo.on_find = [&](std::int64_t) {
        std::unique_lock lock(mu);
        cv.wait_for(lock, 10s, [&] { return !holding; });
    };
    user_cache cache{clock, 100, {60s, 5s, 0s}};
    db_queue queue{db, clock, 300ms, 1000, 1, 64};  // all three are in before the latency ends
    user_service users{cache, queue, repo, clock};
    read_watchdog watchdog{100ms};
    users.bound_reads(watchdog);
    std::thread db_thread([&] { db.run(); });
    std::vector<reply> replies;  // guarded by mu
    for (std::int64_t id : {2, 3, 4})
        users.get(id, [&](const reply& r) {
            std::lock_guard lock(mu);
            replies.push_back(r);
            ++answered;
            cv.notify_all();
        });
    {
        std::unique_lock lock(mu);
        EXPECT_TRUE(cv.wait_for(lock, 5s, [&] { return answered == 3; })) << "waiters of a silent batch kept waiting";
        for (const auto& r : replies) EXPECT_EQ(r.status, outcome::unavailable);
        holding = false;
    }
    cv.notify_all();
    work.reset();
    db_thread.join();
    EXPECT_EQ(repo.find_manys, 1);
    for (std::int64_t id : {2, 3, 4}) EXPECT_TRUE(users.find_cached(id)) << "the late batch stored " << id;
}
