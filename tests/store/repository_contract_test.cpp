// What every user store must do, run against each of them: ids, case-insensitive unique
// emails, versions, If-Match checked in the same step as the write, deletes, pages.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "support/store_factories.hpp"

using namespace userapi::service;
using namespace userapi::store;
using userapi::testing::store_factory;

namespace {

class RepositoryContract : public ::testing::TestWithParam<store_factory> {
protected:
    void SetUp() override {
        repo = GetParam().make();
        if (!repo && userapi::testing::engines_required()) FAIL() << GetParam().name << " is missing under CI";
        if (!repo) GTEST_SKIP() << GetParam().name << " is not available here (tests/engines/engines.py)";
    }
    static precondition versions(std::initializer_list<std::int64_t> v) { return {false, v}; }
    std::unique_ptr<user_repository> repo;
};

}  // namespace

TEST_P(RepositoryContract, CreateAssignsIncreasingIdsAtVersion1) {
    auto a = repo->create({"Ada", "ada@example.org"});
    auto b = repo->create({"Bob", "bob@example.org"});
    ASSERT_EQ(a.status, write_status::done);
    EXPECT_EQ(a.stored, (user{a.stored.id, "Ada", "ada@example.org", 1}));
    EXPECT_GT(b.stored.id, a.stored.id);
    EXPECT_EQ(repo->find(a.stored.id), a.stored);
    EXPECT_FALSE(repo->find(b.stored.id + 1000));
}

TEST_P(RepositoryContract, EmailsAreUniqueWhateverTheirCase) {
    ASSERT_EQ(repo->create({"Ada", "Ada@Example.org"}).status, write_status::done);
    EXPECT_EQ(repo->create({"Other", "ada@example.ORG"}).status, write_status::email_taken);
    EXPECT_EQ(repo->size(), 1u);
}

// A merge patch changes what it names; the version grows only when something changed.
TEST_P(RepositoryContract, UpdateMergesAndBumpsTheVersionOnlyOnChange) {
    const auto id = repo->create({"Ada", "ada@example.org"}).stored.id;
    auto p = repo->update(id, {std::string("Ada King"), std::nullopt}, {});
    ASSERT_EQ(p.status, write_status::done);
    EXPECT_EQ(p.stored, (user{id, "Ada King", "ada@example.org", 2}));
    auto same = repo->update(id, {std::string("Ada King"), std::nullopt}, {});
    EXPECT_EQ(same.stored.version, 2) << "a patch that changes nothing leaves the version";
    auto email = repo->update(id, {std::nullopt, std::string("ada@king.org")}, {});
    EXPECT_EQ(email.stored, (user{id, "Ada King", "ada@king.org", 3}));
    EXPECT_EQ(repo->find(id), email.stored);
}

// If-Match is part of the write: a version it does not name writes nothing.
TEST_P(RepositoryContract, IfMatchIsCheckedWithTheWrite) {
    const auto id = repo->create({"Ada", "ada@example.org"}).stored.id;
    EXPECT_EQ(repo->update(id, {std::string("X")}, versions({2})).status, write_status::precondition_failed);
    EXPECT_EQ(repo->update(id, {std::string("X")}, versions({})).status, write_status::precondition_failed);
    EXPECT_EQ(repo->find(id)->name, "Ada");
    auto ok = repo->update(id, {std::string("Y")}, versions({3, 1}));
    ASSERT_EQ(ok.status, write_status::done);
    EXPECT_EQ(ok.stored.version, 2);
    EXPECT_EQ(repo->update(id, {std::string("Z")}, versions({1})).status, write_status::precondition_failed)
        << "the old version no longer matches";
    EXPECT_EQ(repo->remove(id, versions({1})).status, write_status::precondition_failed);
    EXPECT_TRUE(repo->find(id));
    EXPECT_EQ(repo->remove(id, versions({2})).status, write_status::done);
}

TEST_P(RepositoryContract, MissingUsersAreNotFound) {
    EXPECT_EQ(repo->update(424242, {std::string("X")}, {}).status, write_status::not_found);
    EXPECT_EQ(repo->update(424242, {std::string("X")}, versions({1})).status, write_status::not_found);
    EXPECT_EQ(repo->remove(424242, {}).status, write_status::not_found);
}

// Another user's email is taken; one's own email in another case is not.
TEST_P(RepositoryContract, UpdateEmailConflictsOnlyWithOthers) {
    const auto a = repo->create({"A", "a@example.org"}).stored.id;
    const auto b = repo->create({"B", "b@example.org"}).stored.id;
    EXPECT_EQ(repo->update(b, {std::nullopt, std::string("A@EXAMPLE.ORG")}, {}).status, write_status::email_taken);
    EXPECT_EQ(repo->find(b)->email, "b@example.org");
    auto own = repo->update(a, {std::nullopt, std::string("A@Example.org")}, {});
    ASSERT_EQ(own.status, write_status::done);
    EXPECT_EQ(own.stored.email, "A@Example.org");
}

// A deleted id is never reused; its email may be taken again.
TEST_P(RepositoryContract, DeleteFreesTheEmailNotTheId) {
    const auto id = repo->create({"A", "a@example.org"}).stored.id;
    EXPECT_EQ(repo->remove(id, {}).status, write_status::done);
    EXPECT_FALSE(repo->find(id));
    EXPECT_EQ(repo->remove(id, {}).status, write_status::not_found);
    auto again = repo->create({"A2", "A@example.org"});
    ASSERT_EQ(again.status, write_status::done);
    EXPECT_GT(again.stored.id, id);
}

// Pages in ascending id order, after a given id, at most `limit`.
TEST_P(RepositoryContract, ListPagesInIdOrder) {
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 7; ++i)
        ids.push_back(repo->create({"U" + std::to_string(i), "u" + std::to_string(i) + "@example.org"}).stored.id);
    repo->remove(ids[2], {});
    auto first = repo->list(0, 3);
    ASSERT_EQ(first.size(), 3u);
    EXPECT_EQ(first[0].id, ids[0]);
    EXPECT_EQ(first[2].id, ids[3]) << "the deleted user is skipped";
    auto rest = repo->list(first.back().id, 10);
    ASSERT_EQ(rest.size(), 3u);
    EXPECT_EQ(rest.back().id, ids[6]);
    EXPECT_TRUE(repo->list(ids[6], 10).empty());
    EXPECT_EQ(rest[0].version, 1);
}

TEST_P(RepositoryContract, SeedsOnlyAnEmptyStore) {
    seed_users(*repo, 3);
    seed_users(*repo, 5);
    EXPECT_EQ(repo->size(), 3u);
    EXPECT_EQ(repo->find(2)->email, "user2@example.com");
}

// A delete says which version it removed (the tombstone's version, contract 8.1).
TEST_P(RepositoryContract, DeleteReturnsTheVersionItRemoved) {
    const auto id = repo->create({"A", "a@example.org"}).stored.id;
    repo->update(id, {std::string("B")}, {});
    repo->update(id, {std::string("C")}, {});
    const auto gone = repo->remove(id, {});
    ASSERT_EQ(gone.status, write_status::done);
    EXPECT_EQ(gone.stored.id, id);
    EXPECT_EQ(gone.stored.version, 3);
}

namespace {
idempotency_key key_of(const std::string& k, const std::string& fingerprint = "fp-1") {
    return {"", k, fingerprint, std::chrono::seconds(3600)};
}
}  // namespace

// A keyed create runs once: the same key and fingerprint get the recorded outcome back
// (replayed) and write nothing; another fingerprint is a mismatch and writes nothing.
TEST_P(RepositoryContract, KeyedCreateRunsOnce) {
    const auto first = repo->create_once({"A", "a@example.org"}, key_of("k1"));
    ASSERT_EQ(first.status, write_status::done);
    EXPECT_EQ(first.key, key_outcome::fresh);
    const auto again = repo->create_once({"A", "a@example.org"}, key_of("k1"));
    EXPECT_EQ(again.key, key_outcome::replayed);
    EXPECT_EQ(again.status, write_status::done);
    EXPECT_EQ(again.stored, first.stored);
    EXPECT_EQ(repo->create_once({"B", "b@example.org"}, key_of("k1", "fp-2")).key, key_outcome::mismatch);
    EXPECT_EQ(repo->size(), 1u);
    EXPECT_EQ(repo->list(0, 10).size(), 1u);
}

// The store's refusals are recorded too (409, 404, 412 replay as such); keys are per scope.
TEST_P(RepositoryContract, KeyedRefusalsAreRecordedAndScoped) {
    const auto a = repo->create({"A", "a@example.org"}).stored.id;
    const auto taken = repo->create_once({"A2", "A@example.org"}, key_of("k2"));
    EXPECT_EQ(taken.status, write_status::email_taken);
    EXPECT_EQ(repo->create_once({"A2", "A@example.org"}, key_of("k2")).key, key_outcome::replayed);
    EXPECT_EQ(repo->update_once(a, {std::string("X")}, versions({9}), key_of("k3")).status,
              write_status::precondition_failed);
    const auto replay = repo->update_once(a, {std::string("X")}, versions({9}), key_of("k3"));
    EXPECT_EQ(replay.key, key_outcome::replayed);
    EXPECT_EQ(replay.status, write_status::precondition_failed);
    EXPECT_EQ(repo->remove_once(424242, {}, key_of("k4")).status, write_status::not_found);
    idempotency_key other = key_of("k4");
    other.scope = "someone else";
    EXPECT_EQ(repo->remove_once(a, {}, other).key, key_outcome::fresh) << "another scope's key is another key";
    EXPECT_FALSE(repo->find(a));
}

// A keyed update to another user's email is a recorded 409 (email taken), replayed as such.
TEST_P(RepositoryContract, KeyedUpdateEmailTakenIsRecorded) {
    repo->create({"A", "a@example.org"});
    const auto b = repo->create({"B", "b@example.org"}).stored.id;
    const auto first = repo->update_once(b, {std::nullopt, std::string("A@example.org")}, {}, key_of("e1"));
    EXPECT_EQ(first.status, write_status::email_taken);
    EXPECT_EQ(first.key, key_outcome::fresh);
    const auto again = repo->update_once(b, {std::nullopt, std::string("A@example.org")}, {}, key_of("e1"));
    EXPECT_EQ(again.key, key_outcome::replayed);
    EXPECT_EQ(again.status, write_status::email_taken);
    EXPECT_EQ(repo->find(b)->email, "b@example.org");
}

// A keyed update and delete replay their recorded outcome, whatever happened since.
TEST_P(RepositoryContract, KeyedUpdateAndDeleteReplay) {
    const auto id = repo->create({"A", "a@example.org"}).stored.id;
    const auto first = repo->update_once(id, {std::string("B")}, {}, key_of("u1"));
    ASSERT_EQ(first.status, write_status::done);
    repo->update(id, {std::string("C")}, {});
    const auto replay = repo->update_once(id, {std::string("B")}, {}, key_of("u1"));
    EXPECT_EQ(replay.key, key_outcome::replayed);
    EXPECT_EQ(replay.stored.name, "B");
    EXPECT_EQ(replay.stored.version, 2);
    EXPECT_EQ(repo->find(id)->name, "C") << "a replay wrote";
    const auto gone = repo->remove_once(id, {}, key_of("d1"));
    ASSERT_EQ(gone.status, write_status::done);
    EXPECT_EQ(gone.stored.version, 3);
    const auto again = repo->remove_once(id, {}, key_of("d1"));
    EXPECT_EQ(again.key, key_outcome::replayed);
    EXPECT_EQ(again.status, write_status::done);
}

// A key older than its TTL is new again; purge_keys forgets such keys. (TTL 0: every key
// recorded before now is older than it, with no waiting on the store's own clock.)
TEST_P(RepositoryContract, KeysOlderThanTheTtlAreNewAgain) {
    auto k = key_of("t1");
    ASSERT_EQ(repo->create_once({"A", "a@example.org"}, k).key, key_outcome::fresh);
    EXPECT_EQ(repo->create_once({"A", "a@example.org"}, k).key, key_outcome::replayed);
    EXPECT_EQ(repo->purge_keys(std::chrono::seconds(3600)), 0u) << "a young key stays";
    k.ttl = std::chrono::seconds(0);
    const auto late = repo->create_once({"A", "a@example.org"}, k);
    EXPECT_EQ(late.key, key_outcome::fresh) << "an expired key is new again, purged or not";
    EXPECT_EQ(late.status, write_status::email_taken);
    EXPECT_EQ(repo->purge_keys(std::chrono::seconds(0)), 1u);
    EXPECT_EQ(repo->purge_keys(std::chrono::seconds(0)), 0u);
}

INSTANTIATE_TEST_SUITE_P(Stores, RepositoryContract, ::testing::ValuesIn(userapi::testing::all_stores()),
                         [](const auto& info) { return info.param.name; });
