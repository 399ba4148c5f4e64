#include "userapi/auth/jwt_verifier.hpp"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <cmath>
#include <memory>

#include <nlohmann/json.hpp>

#include "userapi/auth/base64url.hpp"

namespace userapi::auth {
namespace {

using json = nlohmann::json;

jwt_result fail(jwt_failure f, const char* why) {
    jwt_result r;
    r.failure = f;
    r.description = why;
    return r;
}

std::optional<json> decode_object(std::string_view part) {
    const auto bytes = base64url_decode(part);
    if (!bytes) return std::nullopt;
    try {
        auto j = json::parse(*bytes);
        if (!j.is_object()) return std::nullopt;
        return j;
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

// JWS (RFC 7518 section 3.4) carries an ECDSA signature as R || S; OpenSSL reads DER.
std::optional<std::string> ecdsa_der(std::string_view raw) {
    if (raw.size() != 64) return std::nullopt;
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
        BN_free(r);
        BN_free(s);
        return std::nullopt;
    }
    unsigned char* der = nullptr;
    const int n = i2d_ECDSA_SIG(sig.get(), &der);
    if (n <= 0) return std::nullopt;
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return out;
}

bool verify_signature(const verification_key& key, jws_alg alg, std::string_view input, std::string_view sig) {
    std::string der;
    if (alg == jws_alg::es256) {
        auto d = ecdsa_der(sig);
        if (!d) return false;
        der = std::move(*d);
        sig = der;
    } else if (alg == jws_alg::eddsa) {
        if (sig.size() != 64) return false;
    } else if (static_cast<int>(sig.size()) != EVP_PKEY_get_size(key.pkey.get())) {
        return false;  // an RSA signature is exactly as long as the modulus
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx) return false;
    EVP_PKEY_CTX* pctx = nullptr;
    const EVP_MD* md = alg == jws_alg::eddsa ? nullptr : EVP_sha256();
    if (EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key.pkey.get()) != 1) return false;
    if (alg == jws_alg::ps256 && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
                                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        return false;
    if (alg == jws_alg::rs256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

bool typ_accepted(const json& header) {
    const auto typ = header.find("typ");
    if (typ == header.end()) return true;
    if (!typ->is_string()) return false;
    std::string t = typ->get<std::string>();
    for (auto& c : t) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return t == "jwt" || t == "at+jwt" || t == "application/jwt" || t == "application/at+jwt";
}

std::optional<double> numeric_date(const json& claims, const char* name, bool& bad) {
    const auto it = claims.find(name);
    if (it == claims.end()) return std::nullopt;
    if (!it->is_number() || !std::isfinite(it->get<double>())) {
        bad = true;
        return std::nullopt;
    }
    return it->get<double>();
}

bool audience_matches(const json& aud, const std::string& ours) {
    if (aud.is_string()) return aud.get<std::string>() == ours;
    if (!aud.is_array()) return false;
    for (const auto& a : aud)
        if (a.is_string() && a.get<std::string>() == ours) return true;
    return false;
}

}  // namespace

bool looks_like_jwt(std::string_view token) {
    const auto first = token.find('.');
    if (first == std::string_view::npos) return false;
    const auto second = token.find('.', first + 1);
    return second != std::string_view::npos && token.find('.', second + 1) == std::string_view::npos;
}

jwt_result verify_jwt(std::string_view token, const jwk_set& keys, const jwt_rules& rules, double now) {
    if (!looks_like_jwt(token)) return fail(jwt_failure::malformed, "the token is not a JWT (three base64url parts)");
    const auto first = token.find('.');
    const auto last = token.rfind('.');
    const auto header_part = token.substr(0, first);
    const auto payload_part = token.substr(first + 1, last - first - 1);
    const auto signature_part = token.substr(last + 1);
    const auto header = decode_object(header_part);
    if (!header || payload_part.empty() || signature_part.empty())
        return fail(jwt_failure::malformed, "the token is not a JWT (its header or a part is malformed)");

    const auto alg_member = header->find("alg");
    const auto alg = alg_member != header->end() && alg_member->is_string() ? parse_alg(alg_member->get<std::string>())
                                                                            : std::nullopt;
    if (!alg) return fail(jwt_failure::unsupported_alg, "the token's alg is not one of RS256, PS256, ES256, EdDSA");
    if (header->contains("crit"))
        return fail(jwt_failure::malformed, "the token names critical header parameters (crit) not understood here");
    if (header->contains("enc")) return fail(jwt_failure::malformed, "the token is encrypted (JWE), not signed");
    if (!typ_accepted(*header)) return fail(jwt_failure::malformed, "the token's typ is not JWT");

    std::optional<std::string> kid;
    if (const auto k = header->find("kid"); k != header->end()) {
        if (!k->is_string()) return fail(jwt_failure::malformed, "the token's kid is not a string");
        kid = k->get<std::string>();
    }
    if (kid && !keys.has_kid(*kid)) return fail(jwt_failure::unknown_kid, "no key has the token's kid");
    const auto candidates = keys.candidates(kid ? std::optional<std::string_view>(*kid) : std::nullopt, *alg);
    if (candidates.empty())
        return fail(jwt_failure::no_key, kid ? "the key with the token's kid does not verify the token's alg"
                                             : "no key verifies the token's alg");
    if (candidates.size() > 1)
        return fail(jwt_failure::no_key, kid ? "several keys have the token's kid"
                                             : "the token has no kid and several keys could verify it");

    const auto signature = base64url_decode(signature_part);
    const auto signing_input = token.substr(0, last);
    if (!signature || !verify_signature(*candidates.front(), *alg, signing_input, *signature))
        return fail(jwt_failure::bad_signature, "the token's signature does not verify");

    const auto claims = decode_object(payload_part);
    if (!claims) return fail(jwt_failure::malformed, "the token's claims are not a JSON object");
    bool bad = false;
    const auto exp = numeric_date(*claims, "exp", bad);
    const auto nbf = numeric_date(*claims, "nbf", bad);
    const auto iat = numeric_date(*claims, "iat", bad);
    if (bad) return fail(jwt_failure::bad_claims, "exp, nbf or iat is not a number");
    if (!exp) return fail(jwt_failure::bad_claims, "the token has no exp");
    const double leeway = static_cast<double>(rules.leeway_s);
    if (now > *exp + leeway) return fail(jwt_failure::expired, "the token expired");
    if (nbf && *nbf > now + leeway) return fail(jwt_failure::not_yet_valid, "the token is not valid yet (nbf)");
    if (iat && *iat > now + leeway)
        return fail(jwt_failure::issued_in_future, "the token was issued in the future (iat)");
    const auto iss = claims->find("iss");
    if (iss == claims->end() || !iss->is_string() || iss->get<std::string>() != rules.issuer)
        return fail(jwt_failure::wrong_issuer, "the token is from another issuer");
    const auto aud = claims->find("aud");
    if (aud == claims->end() || !audience_matches(*aud, rules.audience))
        return fail(jwt_failure::wrong_audience, "the token is for another audience");
    const auto sub = claims->find("sub");
    if (sub == claims->end() || !sub->is_string() || sub->get<std::string>().empty() ||
        sub->get<std::string>().size() > 256)
        return fail(jwt_failure::bad_claims, "the token has no sub (a string of 1-256 bytes)");

    auto who = std::make_shared<principal>();
    who->identity = "jwt:" + rules.issuer + ":" + sub->get<std::string>();
    if (const auto scope = claims->find("scope"); scope != claims->end()) {
        if (!scope->is_string()) return fail(jwt_failure::bad_claims, "the token's scope is not a string");
        add_known_scopes(scope->get<std::string>(), who->scopes);
    } else if (const auto scp = claims->find("scp"); scp != claims->end()) {
        if (scp->is_string()) {
            add_known_scopes(scp->get<std::string>(), who->scopes);
        } else if (scp->is_array()) {
            for (const auto& s : *scp) {
                if (!s.is_string()) return fail(jwt_failure::bad_claims, "the token's scp holds a non-string");
                if (auto one = parse_scope(s.get<std::string>())) who->scopes.add(*one);
            }
        } else {
            return fail(jwt_failure::bad_claims, "the token's scp is neither an array nor a string");
        }
    }
    jwt_result ok;
    ok.who = std::move(who);
    ok.expires_at = *exp;
    return ok;
}

}  // namespace userapi::auth
