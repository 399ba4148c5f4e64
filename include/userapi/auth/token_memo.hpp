// Verified bearer tokens, remembered so that the next request with the same token costs a
// lookup, not a signature check (contract 9.5). Keyed by a hash of the token; the entry keeps
// the token itself to compare, so a hash collision can never lend one token another's identity.
// Bounded per thread; an entry lives until the time it was given (a JWT's exp, at most 5
// minutes); forget_all() drops every entry (a reload of the keys).
//
// Owned per thread: each I/O thread has a table of its own (thread_local), so a lookup takes
// no lock and touches no cache line another thread writes. forget_all() only bumps an atomic
// generation; each thread empties its table at its next lookup. A table belongs to one memo
// (its serial): a thread that uses another memo starts afresh.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "userapi/auth/principal.hpp"
#include "userapi/core/clock.hpp"

namespace userapi::auth {

class token_memo {
public:
    explicit token_memo(std::size_t per_thread_capacity = 4096);

    // The principal remembered for `token` on this thread and still valid at `now`, or null.
    // The pointer stays valid until this thread's next call into this memo; `keep` copies it.
    const std::shared_ptr<const principal>* find(std::string_view token, core::steady_time now);

    // Remembers `who` for `token` on this thread until `until`, unless forget_all() ran since
    // `seen` was read from generation() (the token was verified against older credentials).
    void remember(std::string_view token, std::shared_ptr<const principal> who, core::steady_time until,
                  core::steady_time now, std::uint64_t seen);

    // From now on no thread finds what was remembered before.
    void forget_all() { generation_.fetch_add(1, std::memory_order_acq_rel); }
    std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

    // Entries held by the calling thread (tests).
    std::size_t size_here() const;

private:
    struct table;
    table& mine() const;

    const std::uint64_t serial_;
    const std::size_t capacity_;
    std::atomic<std::uint64_t> generation_{1};
};

}  // namespace userapi::auth
