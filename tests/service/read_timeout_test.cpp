// A read the store does not answer (contract 8.4, --db-read-timeout-ms): its waiters are
// answered at the read timeout (a cached user STALE while the instance is deaf, otherwise
// 503), reads that come while it is still out are answered so at once, and what the late read
// finds is stored. The store is a fake whose find() the test holds; the DB queue runs on a
// thread of its own, as in the server, so a held read holds that thread.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "support/test_repository.hpp"
#include "userapi/service/user_service.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;
using clk = std::chrono::steady_clock;

namespace {

class ReadTimeout : public ::testing::Test {
protected:
    static constexpr auto kReadTimeout = 100ms;

    ReadTimeout() {
        seed_users(repo, 10);
        users.bound_reads(watchdog);
        repo.on_find = [this](std::int64_t) {
            std::unique_lock lock(mu);
            ++held;
            changed.notify_all();
            changed.wait(lock, [this] { return !holding; });
        };
    }
    ~ReadTimeout() override {
        release();
        work.reset();
        db_thread.join();
    }

    // Holds every find() until release().
    void hold() {
        std::lock_guard lock(mu);
        holding = true;
    }
    void release() {
        std::lock_guard lock(mu);
        holding = false;
        changed.notify_all();
    }
    // GET as the HTTP layer makes it: the reply, and how long it took.
    std::pair<reply, clk::duration> get(std::int64_t id) {
        struct answer {
            std::mutex m;
            std::condition_variable cv;
            std::optional<reply> r;
        };
        auto a = std::make_shared<answer>();  // the callback may outlive a failed wait
        const auto start = clk::now();
        users.get(id, [a](const reply& r) {
            std::lock_guard lock(a->m);
            a->r = r;
            a->cv.notify_all();
        });
        std::unique_lock lock(a->m);
        EXPECT_TRUE(a->cv.wait_for(lock, 5s, [&] { return a->r.has_value(); })) << "no answer for user " << id;
        return {a->r.value_or(reply{}), clk::now() - start};
    }

    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work = boost::asio::make_work_guard(db);
    std::thread db_thread{[this] { db.run(); }};
    userapi::testing::counting_repository repo;
    user_cache cache{clock, 100, {60s, 5s, 0s}};
    db_queue queue{db, clock, 0ms, 1000};
    user_service users{cache, queue, repo, clock};
    read_watchdog watchdog{kReadTimeout};
    std::mutex mu;
    std::condition_variable changed;
    bool holding = false;  // guarded by mu
    int held = 0;          // guarded by mu: find() calls that reached the hold
};

}  // namespace

// A user not cached, the store silent: 503 (unavailable) at the read timeout, not when the
// store answers; the late read's user is stored, so the next GET is a hit.
TEST_F(ReadTimeout, NotCachedIsUnavailableAtTheReadTimeout) {
    hold();
    const auto [r, took] = get(3);
    EXPECT_EQ(r.status, outcome::unavailable);
    EXPECT_GE(took, kReadTimeout);
    EXPECT_LT(took, kReadTimeout + 900ms);
    release();
    ASSERT_TRUE([&] {
        for (int i = 0; i < 500 && !cache.get(3); ++i) std::this_thread::sleep_for(2ms);
        return cache.get(3).has_value();
    }()) << "the late read's user was not stored";
    const auto [again, _] = get(3);
    EXPECT_EQ(again.status, outcome::ok);
    EXPECT_EQ(again.from, source::hit);
    EXPECT_EQ(repo.finds, 1);
}

// Deaf to other instances, a user still cached: the read goes to the store, which is silent,
// and the cached user is answered STALE at the read timeout; meanwhile, other reads are
// answered at once (STALE for a cached user, 503 for others) without reaching the store.
TEST_F(ReadTimeout, CachedUserIsStaleWhileTheStoreIsSilent) {
    EXPECT_EQ(get(4).first.from, source::miss);  // cached while the store answered
    EXPECT_EQ(get(5).first.from, source::miss);
    users.set_coherent(false);
    hold();
    const auto [r, took] = get(4);
    EXPECT_EQ(r.status, outcome::ok);
    EXPECT_EQ(r.from, source::stale);
    EXPECT_EQ(r.user.json.view(), R"({"id":4,"name":"User 4","email":"user4@example.com"})");
    EXPECT_GE(took, kReadTimeout);
    EXPECT_LT(took, kReadTimeout + 900ms);

    const int finds = repo.finds;
    const auto [cached, t1] = get(5);
    EXPECT_EQ(cached.from, source::stale);
    EXPECT_LT(t1, kReadTimeout) << "waited although a read is known to hang";
    const auto [missing, t2] = get(6);
    EXPECT_EQ(missing.status, outcome::unavailable);
    EXPECT_LT(t2, kReadTimeout);
    EXPECT_EQ(repo.finds, finds) << "reads sent behind a hung one";

    release();  // the store answers again: reads go to it again
    ASSERT_TRUE([&] {
        for (int i = 0; i < 500; ++i) {
            if (get(6).first.status == outcome::ok) return true;
            std::this_thread::sleep_for(2ms);
        }
        return false;
    }());
}

// A store that answers within the read timeout is waited for: no early answer.
TEST_F(ReadTimeout, AnAnswerInTimeIsTheAnswer) {
    hold();
    std::thread releaser([this] {
        {
            std::unique_lock lock(mu);
            changed.wait(lock, [this] { return held > 0; });
        }
        release();
    });
    const auto [r, took] = get(7);
    releaser.join();
    EXPECT_EQ(r.status, outcome::ok);
    EXPECT_EQ(r.from, source::miss);
    EXPECT_LT(took, kReadTimeout);
}

// A read waiting in the queue behind an operation the store does not answer is answered when
// that operation passes the read timeout: it never waits for a slot the silent store holds.
TEST_F(ReadTimeout, ReadsQueuedBehindASilentStoreAreAnswered) {
    EXPECT_EQ(get(8).first.from, source::miss);  // cached while the store answered
    users.set_coherent(false);
    hold();
    std::optional<std::pair<reply, clk::duration>> first;
    std::thread leader([&] { first = get(9); });  // takes the only slot, and hangs there
    {
        std::unique_lock lock(mu);
        ASSERT_TRUE(changed.wait_for(lock, 5s, [this] { return held > 0; }));
    }
    const auto [queued, took] = get(8);  // behind it in the queue
    leader.join();
    EXPECT_EQ(first->first.status, outcome::unavailable);
    EXPECT_EQ(queued.status, outcome::ok);
    EXPECT_EQ(queued.from, source::stale);
    EXPECT_LT(took, kReadTimeout + 900ms) << "waited for the slot";
    EXPECT_EQ(repo.finds, 2) << "the queued read has not reached the store";
    release();
}
