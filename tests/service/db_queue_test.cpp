#include "userapi/service/db_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using userapi::service::db_queue;

namespace {
userapi::core::manual_clock test_clock;  // deadlines move only when a test says so
}  // namespace

// Operations run in admission order, one at a time.
TEST(DbQueue, FifoOneAtATime) {
    boost::asio::io_context ioc;
    db_queue q(ioc, test_clock, 0ms, 100);
    std::vector<int> order;
    int running = 0, max_running = 0;
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(q.submit([&, i](std::size_t) {
            max_running = std::max(max_running, ++running);
            order.push_back(i);
            --running;
        }));
    EXPECT_EQ(q.depth(), 20u);
    ioc.run();
    std::vector<int> expected(20);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(order, expected);
    EXPECT_EQ(max_running, 1);
    EXPECT_EQ(q.depth(), 0u);
}

// Each operation waits its latency on a timer: nothing runs before it is due, and the
// thread is free meanwhile (poll() returns at once instead of sleeping).
TEST(DbQueue, LatencyIsATimerNotASleep) {
    boost::asio::io_context ioc;
    db_queue q(ioc, test_clock, 50ms, 10);
    bool ran = false;
    q.submit([&](std::size_t) { ran = true; });
    const auto start = std::chrono::steady_clock::now();
    ioc.poll();
    EXPECT_FALSE(ran) << "ran before its latency";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 40ms) << "poll() blocked";
    ioc.run();
    EXPECT_TRUE(ran);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

// One running plus `limit` waiting; beyond that submit refuses and the operation never runs.
TEST(DbQueue, LimitRefusesAndDropsNothingAccepted) {
    boost::asio::io_context ioc;
    db_queue q(ioc, test_clock, 0ms, 2);
    int ran = 0;
    int accepted = 0;
    for (int i = 0; i < 10; ++i) accepted += q.submit([&](std::size_t) { ++ran; }) ? 1 : 0;
    EXPECT_EQ(accepted, 3);
    ioc.run();
    EXPECT_EQ(ran, 3) << "every accepted operation runs";
    EXPECT_TRUE(q.submit([&](std::size_t) { ++ran; })) << "room again once drained";
    ioc.restart();
    ioc.run();
    EXPECT_EQ(ran, 4);
}

// An operation that throws does not stall the ones behind it.
TEST(DbQueue, ThrowingOperationDoesNotStallQueue) {
    boost::asio::io_context ioc;
    db_queue q(ioc, test_clock, 0ms, 10);
    bool second = false;
    q.submit([](std::size_t) { throw std::runtime_error("boom"); });
    q.submit([&](std::size_t) { second = true; });
    ioc.run();
    EXPECT_TRUE(second);
    EXPECT_EQ(q.depth(), 0u);
}

// A job whose deadline passed while it waited never runs: its `expired` callback is called
// instead, it costs no latency, and its slot is free again.
TEST(DbQueue, ExpiredJobsAreDroppedUnrun) {
    boost::asio::io_context ioc;
    db_queue q(ioc, test_clock, 0ms, 1);
    const auto past = test_clock.now() - 1ms;
    bool ran = false, expired = false, fresh_ran = false;
    ASSERT_TRUE(q.submit([&](std::size_t) { ran = true; }, past, [&] { expired = true; }));
    ASSERT_TRUE(q.submit([&](std::size_t) { fresh_ran = true; }));
    EXPECT_FALSE(q.submit([](std::size_t) {})) << "full: one running plus one waiting";
    ioc.run();
    EXPECT_FALSE(ran);
    EXPECT_TRUE(expired);
    EXPECT_TRUE(fresh_ran);
    EXPECT_EQ(q.depth(), 0u);
}

// With concurrency N, up to N operations run at once, started in FIFO order, each holding a
// slot no other running operation holds. Each batch of three waits until all three are in,
// which only ends if three run at the same time.
TEST(DbQueue, ConcurrencyRunsSeveralAtOnceInFifoOrder) {
    boost::asio::io_context ioc;
    db_queue q(ioc, test_clock, 0ms, 100, 3);
    std::mutex mu;
    std::condition_variable cv;
    std::vector<int> started;
    std::set<std::size_t> busy;
    int running = 0, max_running = 0;
    for (int i = 0; i < 9; ++i)
        ASSERT_TRUE(q.submit([&, i](std::size_t slot) {
            std::unique_lock lock(mu);
            started.push_back(i);
            EXPECT_LT(slot, 3u);
            EXPECT_TRUE(busy.insert(slot).second) << "slot " << slot << " held twice";
            max_running = std::max(max_running, ++running);
            cv.notify_all();
            const auto batch_end = static_cast<std::size_t>((i / 3 + 1) * 3);
            cv.wait_for(lock, 5s, [&] { return started.size() >= batch_end; });
            busy.erase(slot);
            --running;
        }));
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) threads.emplace_back([&] { ioc.run(); });
    for (auto& t : threads) t.join();
    ASSERT_EQ(started.size(), 9u);
    EXPECT_EQ(max_running, 3);
    EXPECT_EQ(q.depth(), 0u);
    for (std::size_t b = 0; b < 3; ++b) {
        std::set<int> batch(started.begin() + static_cast<long>(b * 3), started.begin() + static_cast<long>(b * 3 + 3));
        EXPECT_EQ(batch, (std::set<int>{int(b * 3), int(b * 3 + 1), int(b * 3 + 2)})) << "not started in FIFO order";
    }
}

// Finding 4 (contract 8.2): the deadline is checked after the latency, just before the
// operation runs. One whose deadline passes during its latency is expired, never run, so a
// caller told "not performed" is told the truth.
TEST(DbQueue, DeadlinePassingDuringTheLatencyExpiresUnrun) {
    boost::asio::io_context ioc;
    userapi::core::system_clock real;
    db_queue q(ioc, real, 100ms, 10);
    bool ran = false, expired = false, slot_taken = false;
    ASSERT_TRUE(q.submit([&](std::size_t) { ran = true; }, real.now() + 30ms, [&] { expired = true; },
                         [&] { slot_taken = true; }));
    ioc.run();
    EXPECT_TRUE(slot_taken) << "it took a slot at once";
    EXPECT_TRUE(expired);
    EXPECT_FALSE(ran) << "ran after its deadline";
    EXPECT_EQ(q.depth(), 0u);
}

// A read (not strict) that has its slot runs even when its deadline passes during the
// latency: its result still fills the cache.
TEST(DbQueue, NonStrictOperationRunsOnceItHasItsSlot) {
    boost::asio::io_context ioc;
    userapi::core::system_clock real;
    db_queue q(ioc, real, 60ms, 10);
    bool ran = false, expired = false;
    ASSERT_TRUE(q.submit([&](std::size_t) { ran = true; }, real.now() + 10ms, [&] { expired = true; }, {}, false));
    ioc.run();
    EXPECT_TRUE(ran);
    EXPECT_FALSE(expired);
}

// An operation whose deadline holds through its latency runs, and is not expired.
TEST(DbQueue, DeadlineAfterTheLatencyRuns) {
    boost::asio::io_context ioc;
    userapi::core::system_clock real;
    db_queue q(ioc, real, 10ms, 10);
    bool ran = false, expired = false;
    ASSERT_TRUE(q.submit([&](std::size_t) { ran = true; }, real.now() + 5s, [&] { expired = true; }));
    ioc.run();
    EXPECT_TRUE(ran);
    EXPECT_FALSE(expired);
}

// A job waiting behind one that holds the only slot expires at its deadline, not when the
// slot frees: the queue wakes itself. (The holder here runs 300 ms; the waiter's deadline is
// 50 ms away.)
TEST(DbQueue, WaitingJobExpiresAtItsDeadlineWhileTheSlotIsHeld) {
    boost::asio::io_context ioc;
    userapi::core::system_clock real;
    db_queue q(ioc, real, 0ms, 10);
    std::atomic<bool> release{false};
    std::chrono::steady_clock::time_point expired_at{};
    const auto start = std::chrono::steady_clock::now();
    bool waiter_ran = false;
    ASSERT_TRUE(q.submit([&](std::size_t) {
        while (!release) std::this_thread::sleep_for(1ms);  // the store hangs (on its own thread)
    }));
    ASSERT_TRUE(q.submit([&](std::size_t) { waiter_ran = true; }, real.now() + 50ms,
                         [&] { expired_at = std::chrono::steady_clock::now(); }));
    std::thread runner([&] { ioc.run(); });
    std::thread other([&] { ioc.run(); });  // the expiry timer runs while the holder blocks a thread
    std::this_thread::sleep_for(300ms);
    release = true;
    runner.join();
    other.join();
    EXPECT_FALSE(waiter_ran);
    ASSERT_NE(expired_at, std::chrono::steady_clock::time_point{}) << "never expired";
    EXPECT_LT(expired_at - start, 250ms) << "expired only when the slot freed";
}

// The expiry timer does not keep the io_context busy once nothing waits: run() returns.
TEST(DbQueue, IdleQueueLetsRunReturn) {
    boost::asio::io_context ioc;
    db_queue q(ioc, test_clock, 0ms, 10);
    int ran = 0;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.submit([&](std::size_t) { ++ran; }, test_clock.now() + 24h, [] {}));
    const auto start = std::chrono::steady_clock::now();
    ioc.run();
    EXPECT_EQ(ran, 3);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}
