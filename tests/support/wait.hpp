// Waiting for a condition in tests: poll every few milliseconds up to a bound, never a fixed
// sleep that hopes the condition has come true.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"

namespace userapi::testing {

template <class Cond>
bool eventually(Cond cond, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
}

inline nlohmann::json cache_status(std::uint16_t port) {
    return nlohmann::json::parse(request(port, "GET", "/cache-status").body);
}

}  // namespace userapi::testing
