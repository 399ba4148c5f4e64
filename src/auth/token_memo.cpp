#include "userapi/auth/token_memo.hpp"

#include <functional>
#include <string>
#include <unordered_map>

namespace userapi::auth {
namespace {

std::atomic<std::uint64_t> next_serial{1};

struct entry {
    std::string token;
    std::shared_ptr<const principal> who;
    core::steady_time until;
};

}  // namespace

// One thread's entries, and which memo and generation they belong to.
struct token_memo::table {
    std::uint64_t serial = 0;
    std::uint64_t generation = 0;
    std::unordered_map<std::size_t, entry> entries;
};

token_memo::token_memo(std::size_t per_thread_capacity)
    : serial_(next_serial.fetch_add(1, std::memory_order_relaxed)), capacity_(per_thread_capacity) {}

token_memo::table& token_memo::mine() const {
    thread_local table t;
    const auto generation = generation_.load(std::memory_order_acquire);
    if (t.serial != serial_ || t.generation != generation) {
        t.entries.clear();
        t.serial = serial_;
        t.generation = generation;
    }
    return t;
}

const std::shared_ptr<const principal>* token_memo::find(std::string_view token, core::steady_time now) {
    auto& t = mine();
    const auto it = t.entries.find(std::hash<std::string_view>{}(token));
    if (it == t.entries.end()) return nullptr;
    const auto& e = it->second;
    // Not a constant-time comparison, and it need not be: only a token whose hash matches an
    // entry's gets here, and the hash of an unknown token says nothing of a known one.
    if (std::string_view(e.token) != token) return nullptr;
    if (now >= e.until) {
        t.entries.erase(it);
        return nullptr;
    }
    return &e.who;
}

void token_memo::remember(std::string_view token, std::shared_ptr<const principal> who, core::steady_time until,
                          core::steady_time now, std::uint64_t seen) {
    auto& t = mine();
    if (t.generation != seen) return;
    if (t.entries.size() >= capacity_) {
        std::erase_if(t.entries, [now](const auto& kv) { return now >= kv.second.until; });
        if (t.entries.size() >= capacity_) t.entries.erase(t.entries.begin());
    }
    t.entries.insert_or_assign(std::hash<std::string_view>{}(token), entry{std::string(token), std::move(who), until});
}

std::size_t token_memo::size_here() const { return mine().entries.size(); }

}  // namespace userapi::auth
