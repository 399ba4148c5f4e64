// One request being answered: what the handler and the resources it routes to read and write.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "userapi/core/ip_address.hpp"
#include "userapi/http/beast_types.hpp"
#include "userapi/http/request_handler.hpp"
#include "userapi/http/router.hpp"

namespace userapi::http {

struct exchange {
    exchange(const request& r, const request_info& info)
        : req(r),
          peer(info.peer),
          peer_text(info.peer_text),
          id(info.request_id),
          match(match_route(r.target())),
          res(std::piecewise_construct, std::make_tuple(),
              std::make_tuple(fields_allocator(info.memory ? info.memory : std::pmr::new_delete_resource()))) {
        if (peer_text.empty()) {  // a caller without a session (tests)
            peer_text_storage = peer.to_string();
            peer_text = peer_text_storage;
        }
    }
    exchange(const exchange&) = delete;
    exchange& operator=(const exchange&) = delete;

    const request& req;
    const core::ip_address& peer;
    std::string_view peer_text;
    std::string peer_text_storage;  // when the session gave none
    std::string_view id;  // the request id
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    route_match match;
    std::optional<core::ip_address> client;  // resolved once, by the rate limiter, on limited routes
    response res;
};

// Client text in a detail: short, so an error never echoes a huge input back.
std::string clip(std::string_view s);

// 200-style JSON answer.
void set_json(response& res, unsigned status, core::shared_bytes body);

}  // namespace userapi::http
