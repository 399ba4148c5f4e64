// Whether a request may use its route (contract 9.2-9.4): the scope each route needs, the
// credentials of the request (one Authorization: Bearer field, read by auth::), and the
// RFC 6750 answers when it may not: 401 with the plain challenge when it brings none, 401
// invalid_token, 400 invalid_request, 403 insufficient_scope naming the scope.
//
// With no credentials configured (no API keys, no JWK Set) v2 holds: Authorization is not
// looked at, except that the admin token, when set, guards DELETE /cache as before (401
// without it, 403 with another).
//
// It holds no per-request state: one gate serves every thread. decide() looks, refuse()
// answers and counts; neither reads a body or touches the store.
#pragma once

#include <memory>
#include <optional>

#include "userapi/auth/authenticator.hpp"
#include "userapi/auth/scopes.hpp"
#include "userapi/config/config.hpp"
#include "userapi/http/beast_types.hpp"
#include "userapi/http/exchange.hpp"
#include "userapi/http/metrics.hpp"
#include "userapi/http/router.hpp"

namespace userapi::http {

// The scope a served method of a route needs; nullopt for the open routes (health, readiness,
// metrics) and for what the route does not serve (answered 404/405 before credentials).
std::optional<auth::scope> scope_needed(route r, bhttp::verb v);

class auth_gate {
public:
    // `auth` may be null (tests): then only the admin token is known.
    auth_gate(const config::settings& cfg, auth::authenticator* auth, metrics& stats);

    struct decision {
        enum kind_type { pass, refuse, unknown_kid, later } kind = pass;
        // The authenticated caller (pass, and an insufficient scope); null: anonymous or refused.
        const auth::principal* who = nullptr;
        std::shared_ptr<const auth::principal> owned;  // with `keep`: holds `who`
        auth_failure reason = auth_failure::missing;   // refuse, unknown_kid
        const char* description = "";
        auth::scope needed = auth::scope::users_read;
        bool admin_token_only = false;  // v2's refusal: its detail is the description, as it always was
    };

    // Whether any request is ever looked at: credentials configured, or the admin token.
    bool active() const { return active_; }
    bool credentials_configured() const { return auth_ && auth_->configured(); }

    // `keep`: `owned` holds the principal, for a caller that suspends before it is done.
    // Without it `who` is valid until this thread's next call. `quick`: a token the memo does
    // not know yet is `later`, not verified here.
    decision decide(const request& req, route r, bhttp::verb v, bool keep, bool quick = false) const;

    // The refusal's status, WWW-Authenticate field and problem body on `x.res`; counted.
    void refuse(exchange& x, const decision& d) const;

    auth::authenticator* authenticator() const { return auth_; }

private:
    decision check_admin_token_only(const request& req, route r) const;

    auth::authenticator* auth_;
    metrics& stats_;
    auth::scope_set anonymous_;
    bool active_;
};

}  // namespace userapi::http
