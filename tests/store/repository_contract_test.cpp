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
    EXPECT_EQ(repo->remove(id, versions({1})), write_status::precondition_failed);
    EXPECT_TRUE(repo->find(id));
    EXPECT_EQ(repo->remove(id, versions({2})), write_status::done);
}

TEST_P(RepositoryContract, MissingUsersAreNotFound) {
    EXPECT_EQ(repo->update(424242, {std::string("X")}, {}).status, write_status::not_found);
    EXPECT_EQ(repo->update(424242, {std::string("X")}, versions({1})).status, write_status::not_found);
    EXPECT_EQ(repo->remove(424242, {}), write_status::not_found);
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
    EXPECT_EQ(repo->remove(id, {}), write_status::done);
    EXPECT_FALSE(repo->find(id));
    EXPECT_EQ(repo->remove(id, {}), write_status::not_found);
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

INSTANTIATE_TEST_SUITE_P(Stores, RepositoryContract, ::testing::ValuesIn(userapi::testing::all_stores()),
                         [](const auto& info) { return info.param.name; });
