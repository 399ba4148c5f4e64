// Version order through the service (contract 8.1, finding 1), on a real DB queue with two
// connections: a write is held at a latch after its commit, on its way back, while another
// operation on the same user runs and is answered on the other connection. Whatever order
// they return in, a request after an answer never gets an older version.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "support/test_repository.hpp"
#include "userapi/service/user_service.hpp"

using namespace std::chrono_literals;
using namespace userapi::service;

namespace {

class VersionOrder : public ::testing::TestWithParam<bool> {  // negative caching on / off
protected:
    VersionOrder() {
        seed_users(repo, 10);
        // The first write to pass here (after its commit) waits until released.
        repo.after_write = [this](std::int64_t) { hold(); };
        repo.on_find = [this](std::int64_t) {
            if (hold_reads) hold();
        };
        for (int i = 0; i < 2; ++i) threads.emplace_back([this] { db.run(); });
    }
    ~VersionOrder() override {
        release();
        guard.reset();
        for (auto& t : threads) t.join();
    }
    void hold() {
        if (held.exchange(true)) return;
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
    template <class Start>
    reply await(Start start) {
        auto p = std::make_shared<std::promise<reply>>();
        auto f = p->get_future();
        start([p](const reply& r) { p->set_value(r); });
        EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
        return f.get();
    }
    reply get(std::int64_t id) {
        return await([&](auto done) { users.get(id, done); });
    }
    user_patch named(const std::string& n) { return {n}; }

    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard{db.get_executor()};
    userapi::testing::counting_repository repo;
    user_cache cache{clock, 100, {60s, GetParam() ? 5s : 0s, 0s, 100}};
    db_queue queue{db, clock, 0ms, 100, 2};
    user_service users{cache, queue, repo, clock};
    std::mutex mu;
    std::condition_variable cv;
    std::atomic<bool> held{false}, hold_reads{false};
    bool holding = false, released = false;  // guarded by mu
    std::vector<std::thread> threads;
};

}  // namespace

// Write vs write on two slots: PATCH A commits v2 and is held; PATCH B commits v3 and is
// answered; A returns last. Every GET after B's answer gets v3, and the cache keeps v3.
TEST_P(VersionOrder, SlowerWriteOnAnotherSlotNeverReplacesANewerOne) {
    get(3);
    std::promise<reply> a;
    users.update(3, named("A"), {}, [&](const reply& r) { a.set_value(r); });
    wait_until_held();
    const auto b = await([&](auto done) { users.update(3, named("B"), {}, done); });
    ASSERT_EQ(b.status, outcome::ok);
    EXPECT_EQ(b.user.version, 3);
    EXPECT_EQ(get(3).user.version, 3);
    release();
    const auto first = a.get_future().get();
    EXPECT_EQ(first.status, outcome::ok);
    EXPECT_EQ(first.user.version, 2) << "A's own answer is what A committed";
    const auto after = get(3);
    EXPECT_EQ(after.from, source::hit);
    EXPECT_EQ(after.user.version, 3) << "the slower, older write replaced the newer one";
}

// Delete vs patch: the PATCH commits v2 and is held; the DELETE removes v2 and is answered
// 204; the PATCH returns last. No GET after the 204 gets a 200.
TEST_P(VersionOrder, PatchReturningAfterADeleteNeverBringsTheUserBack) {
    get(4);
    std::promise<reply> patched;
    users.update(4, named("Late"), {}, [&](const reply& r) { patched.set_value(r); });
    wait_until_held();
    ASSERT_EQ(await([&](auto done) { users.remove(4, {}, done); }).status, outcome::ok);
    EXPECT_EQ(get(4).status, outcome::not_found);
    release();
    EXPECT_EQ(patched.get_future().get().status, outcome::ok);
    EXPECT_EQ(get(4).status, outcome::not_found) << "a 200 for a deleted user";
    const auto c = cache.get(4);
    EXPECT_TRUE(!c || !c->entry.exists());
}

// Notification vs read: a read takes v1 and is held; another instance commits v2 and its
// notification arrives; the read returns last. Its v1 is not stored, and a GET after the
// notification reads the store again (v2).
TEST_P(VersionOrder, ReadOlderThanANotificationIsNeverStored) {
    hold_reads = true;
    std::promise<reply> early;
    users.get(5, [&](const reply& r) { early.set_value(r); });
    wait_until_held();
    ASSERT_EQ(repo.inner.update(5, named("Elsewhere"), {}).stored.version, 2);  // the other instance's commit
    users.remote_write(5, 2, false);
    hold_reads = false;
    const auto after = get(5);
    EXPECT_EQ(after.user.version, 2) << "a GET after the notification joined the older read";
    release();
    EXPECT_EQ(early.get_future().get().user.version, 1);
    EXPECT_EQ(get(5).user.version, 2) << "the older read was stored over the notification";
}

// A late notification (v2 heard after this instance wrote v3) changes nothing.
TEST_P(VersionOrder, LateNotificationIsDropped) {
    repo.after_write = {};
    ASSERT_EQ(await([&](auto done) { users.update(6, named("Two"), {}, done); }).user.version, 2);
    ASSERT_EQ(await([&](auto done) { users.update(6, named("Three"), {}, done); }).user.version, 3);
    users.remote_write(6, 2, false);
    const auto r = get(6);
    EXPECT_EQ(r.from, source::hit);
    EXPECT_EQ(r.user.version, 3);
}

INSTANTIATE_TEST_SUITE_P(NegativeCaching, VersionOrder, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "on" : "off"; });

namespace {

// The DB queue moves only when the test runs it: what has taken a slot is the test's choice.
class ManualQueue : public ::testing::Test {
protected:
    ManualQueue() { seed_users(repo, 10); }
    userapi::core::manual_clock clock;
    boost::asio::io_context db;
    userapi::testing::counting_repository repo;
    user_cache cache{clock, 100, {60s, 5s, 0s, 100}};
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
};

}  // namespace

// Contract 8.3: a no-cache read joins a read that has not taken a slot yet, never one that
// has (it may have read the store before the request arrived), and never a plain read (whose
// leader may answer from the cache).
TEST_F(ManualQueue, FreshReadJoinsOnlyAReadThatHasNotStarted) {
    users.get_fresh(1, record());
    users.get_fresh(1, record());  // the first read is still waiting: join it
    run_db();
    EXPECT_EQ(repo.finds, 1);
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[1].from, source::coalesced);

    replies.clear();
    users.get(9, record());
    users.get_fresh(9, record());  // not the plain read: one of its own
    users.get(9, record());        // a plain read after it joins the fresher one
    run_db();
    EXPECT_EQ(repo.finds, 3);
    ASSERT_EQ(replies.size(), 3u);
    EXPECT_EQ(replies[1].from, source::miss);
    EXPECT_EQ(replies[2].from, source::coalesced);

    replies.clear();
    users.get_fresh(2, record());
    db.restart();
    db.poll_one();                 // the read takes its slot
    users.get_fresh(2, record());  // too late to join it: a read of its own
    users.get_fresh(2, record());  // ...which this one joins
    run_db();
    EXPECT_EQ(repo.finds, 5);
    ASSERT_EQ(replies.size(), 3u);
    EXPECT_EQ(replies[0].from, source::miss);
    EXPECT_EQ(replies[1].from, source::miss);
    EXPECT_EQ(replies[2].from, source::coalesced);
}

// A no-cache read of a cached user goes to the store, and its result renews the entry.
TEST_F(ManualQueue, FreshReadOfACachedUserReadsTheStore) {
    users.get(3, record());
    run_db();
    users.get_fresh(3, record());
    run_db();
    EXPECT_EQ(repo.finds, 2);
    EXPECT_EQ(replies.back().from, source::miss);
    EXPECT_EQ(users.find_cached(3)->entry.version, 1);
}

// Contract 8.2: a write whose outcome cannot be known is `unknown`, and nothing is cached.
TEST_F(ManualQueue, UnknownOutcomeCachesNothing) {
    repo.fail_maybe_sent = true;
    users.create({"Maybe", "maybe@example.org"}, record());
    run_db();
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].status, outcome::unknown);
    EXPECT_EQ(cache.stats().size, 0u);
}

// A second request with an Idempotency-Key still running here is refused at once (409),
// without reaching the store; once the first is answered, the key replays it.
TEST_F(ManualQueue, KeyStillRunningHereIsInProgressAtOnce) {
    const idempotency_key k{"", "key-1", "fp", std::chrono::seconds(60)};
    users.update(2, {std::string("Once")}, {}, record(), k);
    users.update(2, {std::string("Once")}, {}, record(), k);
    ASSERT_EQ(replies.size(), 1u) << "the duplicate waited for the store";
    EXPECT_EQ(replies[0].status, outcome::key_in_progress);
    run_db();
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[1].status, outcome::ok);
    EXPECT_FALSE(replies[1].replayed);
    users.update(2, {std::string("Once")}, {}, record(), k);
    run_db();
    EXPECT_TRUE(replies.back().replayed);
    EXPECT_EQ(replies.back().user.version, 2);
    EXPECT_EQ(repo.inner.find(2)->version, 2) << "a replay wrote";
    EXPECT_EQ(repo.updates, 2);
}
