#include "userapi/http/auth_gate.hpp"

#include "userapi/auth/authorization.hpp"
#include "userapi/http/problem.hpp"

namespace userapi::http {
namespace {

using field = bhttp::field;
using auth::scope;

auth::scope_set anonymous_scopes(const config::settings& cfg, bool configured) {
    if (!cfg.anonymous_scopes) return configured ? auth::scope_set() : auth::scope_set::all();
    return auth::parse_scope_list(*cfg.anonymous_scopes).value_or(auth::scope_set());  // validated by config
}

// Every Authorization field of `req`: how many there are, and the first one's value.
std::pair<std::size_t, std::string_view> authorization_fields(const request& req) {
    const auto [first, last] = req.equal_range(field::authorization);
    std::size_t n = 0;
    for (auto it = first; it != last; ++it) ++n;
    return {n, n ? std::string_view(first->value()) : std::string_view()};
}

auth_gate::decision refusal(auth_failure reason, const char* description, scope needed) {
    auth_gate::decision d;
    d.kind = auth_gate::decision::refuse;
    d.reason = reason;
    d.description = description;
    d.needed = needed;
    return d;
}

const char* reason_name(auth_failure f) {
    switch (f) {
        case auth_failure::missing:
            return nullptr;
        case auth_failure::invalid_token:
            return "invalid_token";
        case auth_failure::insufficient_scope:
            return "insufficient_scope";
        case auth_failure::invalid_request:
            return "invalid_request";
    }
    return nullptr;
}

}  // namespace

std::optional<scope> scope_needed(route r, bhttp::verb v) {
    const bool read = v == bhttp::verb::get || v == bhttp::verb::head;
    switch (r) {
        case route::user:
            if (read) return scope::users_read;
            if (v == bhttp::verb::patch || v == bhttp::verb::delete_) return scope::users_write;
            break;
        case route::users:
            if (read) return scope::users_read;
            if (v == bhttp::verb::post) return scope::users_write;
            break;
        case route::cache:
            if (v == bhttp::verb::delete_) return scope::admin;
            break;
        case route::cache_status:
            if (read) return scope::admin;
            break;
        default:
            break;
    }
    return std::nullopt;
}

auth_gate::auth_gate(const config::settings& cfg, auth::authenticator* a, metrics& stats)
    : auth_(a),
      stats_(stats),
      anonymous_(anonymous_scopes(cfg, a && a->configured())),
      active_((a && a->configured()) || !cfg.admin_token.empty() || cfg.anonymous_scopes.has_value()) {}

// v2: DELETE /cache needs the admin token, and 401 / 403 say so as they always did (also what
// needs admin when --anonymous-scopes withholds it).
auth_gate::decision auth_gate::check_admin_token_only(const request& req, route r) const {
    const auto v2 = [](decision d) {
        d.admin_token_only = true;
        return d;
    };
    const auto [count, value] = authorization_fields(req);
    if (count > 1) return v2(refusal(auth_failure::invalid_request, "more than one Authorization field", scope::admin));
    const auto c = auth::parse_authorization(value);
    if (count == 0 || c.kind != auth::bearer_credentials::bearer)
        return v2(refusal(auth_failure::missing,
                          r == route::cache ? "DELETE /cache needs Authorization: Bearer <admin token>"
                                            : "this request needs Authorization: Bearer <admin token>",
                          scope::admin));
    if (!auth_ || !auth_->is_admin_token(c.token))
        return v2(refusal(auth_failure::insufficient_scope, "the admin token is not valid", scope::admin));
    decision d;
    d.who = auth_->admin_principal().get();
    return d;
}

auth_gate::decision auth_gate::decide(const request& req, route r, bhttp::verb v, bool keep, bool quick) const {
    const auto needed = scope_needed(r, v);
    if (!needed || !active_) return {};
    if (!credentials_configured()) {
        // The admin token is the one credential there is: it guards DELETE /cache (as in v2),
        // and opens what needs admin when --anonymous-scopes withholds that from everyone else.
        const bool admin_token = auth_ && auth_->admin_principal();
        if (*needed == scope::admin && admin_token && (r == route::cache || !anonymous_.has(scope::admin)))
            return check_admin_token_only(req, r);
        if (anonymous_.has(*needed)) return {};
        return refusal(auth_failure::missing, "this request needs credentials: Authorization: Bearer <token>", *needed);
    }
    const auto [count, value] = authorization_fields(req);
    if (count == 0) {
        if (anonymous_.has(*needed)) return {};
        return refusal(auth_failure::missing, "this request needs credentials: Authorization: Bearer <token>", *needed);
    }
    if (count > 1) return refusal(auth_failure::invalid_request, "more than one Authorization field", *needed);
    // A token the memo knows was a well-formed one: its characters are looked at only when not.
    auto c = auth::parse_authorization(value, false);
    const std::shared_ptr<const auth::principal>* known = nullptr;
    if (c.kind == auth::bearer_credentials::bearer) {
        known = auth_->remembered(c.token);
        if (!known && !auth::is_b64token(c.token)) c.kind = auth::bearer_credentials::malformed;
    }
    switch (c.kind) {
        case auth::bearer_credentials::other_scheme:
            return refusal(auth_failure::invalid_request, "only the Bearer scheme is accepted", *needed);
        case auth::bearer_credentials::empty_bearer:
            return refusal(auth_failure::invalid_request, "the Bearer token is empty", *needed);
        case auth::bearer_credentials::malformed:
            return refusal(auth_failure::invalid_request, "the Bearer token is not a b64token (RFC 6750)", *needed);
        case auth::bearer_credentials::bearer:
            break;
    }
    auto v2 = known ? auth::authenticator::verdict{auth::authenticator::verdict::valid, known->get(),
                                                   keep ? *known : nullptr, ""}
                    : auth_->check(c.token, keep, quick);
    if (v2.kind == auth::authenticator::verdict::later) {
        decision d;
        d.kind = decision::later;
        return d;
    }
    if (v2.kind != auth::authenticator::verdict::valid) {
        auto d = refusal(auth_failure::invalid_token, v2.description, *needed);
        if (v2.kind == auth::authenticator::verdict::unknown_kid && auth_->jwks_is_url())
            d.kind = decision::unknown_kid;
        return d;
    }
    decision d;
    if (!v2.who->scopes.has(*needed))  // refused, and yet who it is: its bucket is charged
        d = refusal(auth_failure::insufficient_scope, "the credentials do not grant the scope this request needs",
                    *needed);
    d.who = v2.who;
    d.owned = std::move(v2.owned);
    return d;
}

void auth_gate::refuse(exchange& x, const decision& d) const {
    const char* error = reason_name(d.reason);
    const auto needed = auth::scope_name(d.needed);
    // One challenge (RFC 6750 section 3); descriptions are fixed text, never the token, and
    // hold no quote or backslash, so they go in a quoted-string as they are.
    std::string challenge = "Bearer realm=\"userapi\"";
    std::string detail;
    unsigned status = 401;
    if (error) {
        challenge += ", error=\"";
        challenge += error;
        challenge += "\", error_description=\"";
        challenge += d.description;
        challenge += '"';
    }
    switch (d.reason) {
        case auth_failure::missing:
            detail = std::string(d.description) + " with the scope " + std::string(needed);
            break;
        case auth_failure::invalid_token:
            detail = std::string("the bearer token is not accepted: ") + d.description;
            break;
        case auth_failure::invalid_request:
            status = 400;
            detail = std::string("malformed credentials: ") + d.description;
            break;
        case auth_failure::insufficient_scope:
            status = 403;
            challenge += ", scope=\"";
            challenge += needed;
            challenge += '"';
            detail = "these credentials do not grant " + std::string(needed) + ", which this request needs";
            break;
    }
    if (d.admin_token_only) detail = d.description;
    stats_.auth_failed(d.reason);
    x.res.set(field::www_authenticate, challenge);
    set_problem(x.res, status, detail);
}

}  // namespace userapi::http
