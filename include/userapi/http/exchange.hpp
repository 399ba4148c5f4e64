// One request being answered: what the handler and the resources it routes to read and write.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "userapi/auth/principal.hpp"
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
          body_unread(info.body_unread),
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
    std::string_view id;            // the request id
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    route_match match;
    std::optional<core::ip_address> client;  // resolved once, by the rate limiter, on limited routes
    // Who sent it: null while anonymous. `who_owned` holds it across suspensions (handle());
    // the synchronous path leaves it empty and `who` points into the thread's token memo.
    const auth::principal* who = nullptr;
    std::shared_ptr<const auth::principal> who_owned;
    bool body_unread = false;  // refused on its header: the body was never read
    response res;

    std::string_view identity() const { return who ? std::string_view(who->identity) : "anonymous"; }
};

// Client text in a detail: short, so an error never echoes a huge input back.
std::string clip(std::string_view s);

// 200-style JSON answer.
void set_json(response& res, unsigned status, core::shared_bytes body);

}  // namespace userapi::http
