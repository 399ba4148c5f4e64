// /users and /users/{id}: reading, listing, creating, changing and deleting users through the
// user service, with ETags and conditional requests (contract sections 2 and 6).
#pragma once

#include <chrono>
#include <optional>

#include <boost/asio/awaitable.hpp>

#include "userapi/config/config.hpp"
#include "userapi/http/exchange.hpp"
#include "userapi/service/user_service.hpp"

namespace userapi::http {

class users_resource {
public:
    users_resource(const config::settings& cfg, service::user_service& users) : cfg_(cfg), users_(users) {}

    boost::asio::awaitable<void> get(exchange& x);     // GET/HEAD /users/{id}
    boost::asio::awaitable<void> list(exchange& x);    // GET/HEAD /users?limit=N&after=ID
    boost::asio::awaitable<void> create(exchange& x);  // POST /users
    boost::asio::awaitable<void> patch(exchange& x);   // PATCH /users/{id}
    boost::asio::awaitable<void> remove(exchange& x);  // DELETE /users/{id}

    // GET/HEAD /users/{id} answered from the cache: the id is valid and `found` is its entry.
    void answer_cached(exchange& x, std::int64_t id, const service::user_cache::lookup& found);

private:
    void answer_read(exchange& x, std::int64_t id, const service::cached_user& user, service::source from);
    // If-Match as a precondition; nullopt with 400 or 428 set on the response.
    std::optional<service::precondition> write_precondition(exchange& x, std::int64_t id);
    // Every answer of a write but its success: 404, 409, 412, 422, and 503/504 saying whether
    // it was written. `r` nullopt: no outcome in time.
    void answer_write_failure(exchange& x, std::int64_t id, const std::optional<service::reply>& r,
                              const std::string& email);
    // The Idempotency-Key of a write, when sent; false with 400 set when it is malformed.
    bool write_key(exchange& x, std::optional<service::idempotency_key>& key);
    std::chrono::milliseconds write_wait() const;

    const config::settings& cfg_;
    service::user_service& users_;
};

}  // namespace userapi::http
