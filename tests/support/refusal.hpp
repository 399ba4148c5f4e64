// The check behind every "this request is refused" test: a problem with the status, the
// connection closed after it, and the server still serving others.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"

namespace userapi::testing {

inline void expect_refused(std::uint16_t port, const std::string& bytes, int status) {
    connection c(port);
    c.send(bytes);
    auto r = c.read_response();
    EXPECT_EQ(r.status, status) << bytes.substr(0, 200);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(nlohmann::json::parse(r.body)["status"], status);
    EXPECT_TRUE(c.closed_by_peer(std::chrono::seconds(3))) << "connection left open after a refused request";
    EXPECT_EQ(request(port, "GET", "/healthz").status, 200) << "the server stopped serving others";
}

}  // namespace userapi::testing
