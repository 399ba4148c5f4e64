// The JWT verifier against the RFCs' own examples (RFC 7515 A.2 and A.3, RFC 8037 A.4, RFC 7519
// section 3.1) and the attacks of RFC 8725 section 2, with keys and tokens made by OpenSSL.
#include "userapi/auth/jwt_verifier.hpp"

#include <gtest/gtest.h>

#include <variant>

#include "support/jwt_minter.hpp"
#include "userapi/auth/base64url.hpp"

using namespace userapi;
using auth::jwt_failure;
using nlohmann::json;
using userapi::testing::signing_key;
namespace fixtures = userapi::testing;

namespace {

constexpr double kNow = 1'900'000'000;  // the tests' wall clock
const auth::jwt_rules kRules{"https://issuer.test", "userapi", 60};

auth::jwk_set set_of(const std::string& jwks_json) {
    auto parsed = auth::jwk_set::parse(jwks_json);
    if (auto* e = std::get_if<std::string>(&parsed)) throw std::runtime_error(*e);
    return std::get<auth::jwk_set>(std::move(parsed));
}

json claims(json over = json::object()) {
    json c = {{"iss", kRules.issuer}, {"aud", kRules.audience}, {"sub", "alice"},
              {"iat", kNow - 10},     {"exp", kNow + 600},      {"scope", "users:read users:write"}};
    for (auto& [k, v] : over.items()) {
        if (v.is_null())
            c.erase(k);
        else
            c[k] = v;
    }
    return c;
}

jwt_failure failure_of(const std::string& token, const auth::jwk_set& keys, double now = kNow) {
    return auth::verify_jwt(token, keys, kRules, now).failure;
}

// Replaces the character at `i` with another of the base64url alphabet.
std::string flipped(std::string token, std::size_t i) {
    token[i] = token[i] == 'A' ? 'B' : 'A';
    return token;
}

// RFC 7515 appendix A.2: an RS256 JWS and the RSA key that signed it (no kid, no aud, no sub).
const std::string kRfc7515RsaN =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-"
    "pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg6"
    "65xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWy"
    "uXpoQ";
const std::string kRfc7515Rs256 =
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
    "fQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr"
    "7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12"
    "jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_"
    "IoypGlUPQGe"
    "77Rw";
// RFC 7515 appendix A.3: ES256.
const std::string kRfc7515Es256 =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
    "fQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
// RFC 8037 appendix A.4: EdDSA over the text "Example of Ed25519 signing" (not a claims object).
const std::string kRfc8037EdDsa =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4i"
    "ylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
// RFC 7519 section 3.1: HS256.
const std::string kRfc7519Hs256 =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
    "bS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

const auth::jwt_rules kJoe{"joe", "userapi", 60};
constexpr double kBefore2011Exp = 1300819000;  // the RFC examples expire at 1300819380

TEST(JwtRfcVectors, Rfc7515Rs256SignatureVerifiesThenTheMissingAudienceIsRefused) {
    const auto keys = set_of(R"({"keys":[{"kty":"RSA","n":")" + kRfc7515RsaN + R"(","e":"AQAB"}]})");
    // Past the signature (a bad one would say bad_signature): the example names no audience.
    EXPECT_EQ(auth::verify_jwt(kRfc7515Rs256, keys, kJoe, kBefore2011Exp).failure, jwt_failure::wrong_audience);
    EXPECT_EQ(auth::verify_jwt(flipped(kRfc7515Rs256, kRfc7515Rs256.size() - 10), keys, kJoe, kBefore2011Exp).failure,
              jwt_failure::bad_signature);
    EXPECT_EQ(auth::verify_jwt(kRfc7515Rs256, keys, kJoe, 1300819380 + 61).failure, jwt_failure::expired);
}

TEST(JwtRfcVectors, Rfc7515Es256SignatureVerifies) {
    const auto keys = set_of(R"({"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
                             R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})");
    EXPECT_EQ(auth::verify_jwt(kRfc7515Es256, keys, kJoe, kBefore2011Exp).failure, jwt_failure::wrong_audience);
    EXPECT_EQ(auth::verify_jwt(flipped(kRfc7515Es256, kRfc7515Es256.size() - 5), keys, kJoe, kBefore2011Exp).failure,
              jwt_failure::bad_signature);
}

TEST(JwtRfcVectors, Rfc8037EdDsaSignatureVerifiesButItsPayloadIsNoClaimsSet) {
    const auto keys =
        set_of(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})");
    const auto r = auth::verify_jwt(kRfc8037EdDsa, keys, kJoe, kBefore2011Exp);
    EXPECT_EQ(r.failure, jwt_failure::malformed);
    EXPECT_STREQ(r.description, "the token's claims are not a JSON object");
    EXPECT_EQ(failure_of(flipped(kRfc8037EdDsa, kRfc8037EdDsa.size() - 3), keys), jwt_failure::bad_signature);
}

TEST(JwtRfcVectors, Rfc7519Hs256IsNeverAccepted) {
    const auto keys = set_of(R"({"keys":[{"kty":"RSA","n":")" + kRfc7515RsaN + R"(","e":"AQAB"}]})");
    EXPECT_EQ(auth::verify_jwt(kRfc7519Hs256, keys, kJoe, kBefore2011Exp).failure, jwt_failure::unsupported_alg);
}

class JwtVerifier : public ::testing::Test {
protected:
    const signing_key& rsa = fixtures::shared_key("RSA", "rsa-1");
    const signing_key& ec = fixtures::shared_key("EC", "ec-1");
    const signing_key& ed = fixtures::shared_key("OKP", "ed-1");
    auth::jwk_set keys = set_of(fixtures::jwks_of({rsa.jwk("RS256"), ec.jwk("ES256"), ed.jwk()}));
};

TEST_F(JwtVerifier, EachAlgorithmWithItsKeyIsAccepted) {
    for (const auto& [alg, key] : {std::pair{"RS256", &rsa}, {"ES256", &ec}, {"EdDSA", &ed}}) {
        const auto r = auth::verify_jwt(key->token(alg, claims()), keys, kRules, kNow);
        ASSERT_TRUE(r.who) << alg << ": " << r.description;
        EXPECT_EQ(r.who->identity, "jwt:https://issuer.test:alice");
        EXPECT_TRUE(r.who->scopes.has(auth::scope::users_write));
        EXPECT_FALSE(r.who->scopes.has(auth::scope::admin));
        EXPECT_EQ(r.expires_at, kNow + 600);
    }
}

TEST_F(JwtVerifier, Ps256WithAnRsaKeyThatNamesNoAlg) {
    const auto& other = fixtures::shared_key("RSA", "rsa-any");
    const auto set = set_of(fixtures::jwks_of({other.jwk()}));
    EXPECT_TRUE(auth::verify_jwt(other.token("PS256", claims()), set, kRules, kNow).who);
    EXPECT_TRUE(auth::verify_jwt(other.token("RS256", claims()), set, kRules, kNow).who);
}

// RFC 8725 section 2.1: "none", and an RSA public key used as an HMAC secret.
TEST_F(JwtVerifier, AlgNoneIsRefused) {
    const auto header = auth::base64url_encode(R"({"alg":"none","kid":"rsa-1"})");
    const auto body = auth::base64url_encode(claims().dump());
    EXPECT_EQ(failure_of(header + "." + body + ".", keys), jwt_failure::malformed);
    EXPECT_EQ(failure_of(header + "." + body + ".AAAA", keys), jwt_failure::unsupported_alg);
    const auto upper = auth::base64url_encode(R"({"alg":"NONE","kid":"rsa-1"})");
    EXPECT_EQ(failure_of(upper + "." + body + ".AAAA", keys), jwt_failure::unsupported_alg);
}

TEST_F(JwtVerifier, RsaPublicKeyAsHmacSecretIsRefused) {
    for (const char* alg : {"HS256", "HS384", "HS512"}) {
        const auto t = fixtures::hs256_token({{"alg", alg}, {"kid", "rsa-1"}}, claims(), rsa.public_pem());
        EXPECT_EQ(failure_of(t, keys), jwt_failure::unsupported_alg) << alg;
    }
    // An HMAC key in the set is never kept, so it cannot verify either.
    const std::string secret = "0123456789abcdef0123456789abcdef";
    const auto with_oct = auth::jwk_set::parse(fixtures::jwks_of(
        {rsa.jwk("RS256"), {{"kty", "oct"}, {"kid", "hmac"}, {"k", auth::base64url_encode(secret)}}}));
    ASSERT_TRUE(std::holds_alternative<auth::jwk_set>(with_oct));
    const auto t = fixtures::hs256_token({{"alg", "HS256"}, {"kid", "hmac"}}, claims(), secret);
    EXPECT_EQ(failure_of(t, std::get<auth::jwk_set>(with_oct)), jwt_failure::unsupported_alg);
}

// RFC 8725 section 2.1: an algorithm other than the key's.
TEST_F(JwtVerifier, AlgorithmSubstitutionIsRefused) {
    // The RSA key says RS256: a PS256 token signed by the same private key is still refused.
    EXPECT_EQ(failure_of(rsa.token("PS256", claims()), keys), jwt_failure::no_key);
    // An ES256 header naming the RSA key's kid, signed by the EC key.
    EXPECT_EQ(failure_of(ec.token("ES256", claims(), {{"kid", "rsa-1"}}), keys), jwt_failure::no_key);
    // EdDSA naming the EC key.
    EXPECT_EQ(failure_of(ed.token("EdDSA", claims(), {{"kid", "ec-1"}}), keys), jwt_failure::no_key);
    // A JWK whose alg does not fit its key type is left out of the set.
    std::vector<std::string> notes;
    auto mislabelled = auth::jwk_set::parse(fixtures::jwks_of({rsa.jwk("ES256"), ec.jwk()}), &notes);
    ASSERT_TRUE(std::holds_alternative<auth::jwk_set>(mislabelled));
    EXPECT_EQ(std::get<auth::jwk_set>(mislabelled).size(), 1u);
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].find("does not fit"), std::string::npos) << notes[0];
}

TEST_F(JwtVerifier, UnknownKidIsItsOwnFailure) {
    EXPECT_EQ(failure_of(rsa.token("RS256", claims(), {{"kid", "rsa-2"}}), keys), jwt_failure::unknown_kid);
}

TEST_F(JwtVerifier, KidlessTokenNeedsExactlyOneKeyThatCouldVerifyIt) {
    // One EC key in the set: a kid-less ES256 token is accepted.
    EXPECT_TRUE(auth::verify_jwt(ec.token("ES256", claims(), {{"kid", nullptr}}), keys, kRules, kNow).who);
    // Two RSA keys that could verify RS256: refused, whichever signed it.
    const auto& rsa2 = fixtures::shared_key("RSA", "rsa-2");
    const auto two = set_of(fixtures::jwks_of({rsa.jwk(), rsa2.jwk(), ec.jwk()}));
    EXPECT_EQ(failure_of(rsa.token("RS256", claims(), {{"kid", nullptr}}), two), jwt_failure::no_key);
    // ... but with its kid, fine.
    EXPECT_TRUE(auth::verify_jwt(rsa.token("RS256", claims()), two, kRules, kNow).who);
}

TEST_F(JwtVerifier, EveryBitFlipIsRefused) {
    const auto good = ec.token("ES256", claims());
    ASSERT_TRUE(auth::verify_jwt(good, keys, kRules, kNow).who);
    for (std::size_t i = 0; i < good.size(); ++i) {
        if (good[i] == '.') continue;
        for (int bit = 0; bit < 8; ++bit) {
            std::string t = good;
            t[i] = static_cast<char>(t[i] ^ (1 << bit));
            const auto r = auth::verify_jwt(t, keys, kRules, kNow);
            EXPECT_FALSE(r.who) << "flipping bit " << bit << " of character " << i << " still verifies";
        }
    }
}

TEST_F(JwtVerifier, NonCanonicalBase64IsRefused) {
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const auto good = ed.token("EdDSA", claims());
    // 64 signature bytes end in a character with 4 unused bits: setting one keeps the bytes a
    // lax decoder would see, in another string.
    std::string t = good;
    t.back() = kAlphabet[kAlphabet.find(t.back()) | 1];
    ASSERT_NE(t, good);
    EXPECT_EQ(failure_of(t, keys), jwt_failure::bad_signature);
    EXPECT_EQ(failure_of(good + "=", keys), jwt_failure::bad_signature);
}

TEST_F(JwtVerifier, TimeClaimsWithLeeway) {
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"exp", kNow - 61}})), keys), jwt_failure::expired);
    EXPECT_TRUE(auth::verify_jwt(rsa.token("RS256", claims({{"exp", kNow - 59}})), keys, kRules, kNow).who);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"nbf", kNow + 61}})), keys), jwt_failure::not_yet_valid);
    EXPECT_TRUE(auth::verify_jwt(rsa.token("RS256", claims({{"nbf", kNow + 59}})), keys, kRules, kNow).who);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"iat", kNow + 61}})), keys), jwt_failure::issued_in_future);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"exp", nullptr}})), keys), jwt_failure::bad_claims);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"exp", "tomorrow"}})), keys), jwt_failure::bad_claims);
    EXPECT_TRUE(auth::verify_jwt(rsa.token("RS256", claims({{"exp", kNow + 0.5}})), keys, kRules, kNow).who)
        << "NumericDate may be fractional";
}

TEST_F(JwtVerifier, IssuerAudienceAndSubject) {
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"iss", "https://issuer.test/"}})), keys),
              jwt_failure::wrong_issuer);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"iss", nullptr}})), keys), jwt_failure::wrong_issuer);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"aud", "other"}})), keys), jwt_failure::wrong_audience);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"aud", json::array({"a", "b"})}})), keys),
              jwt_failure::wrong_audience);
    EXPECT_TRUE(
        auth::verify_jwt(rsa.token("RS256", claims({{"aud", json::array({"a", "userapi"})}})), keys, kRules, kNow).who);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"sub", nullptr}})), keys), jwt_failure::bad_claims);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"sub", ""}})), keys), jwt_failure::bad_claims);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims({{"sub", 7}})), keys), jwt_failure::bad_claims);
}

TEST_F(JwtVerifier, ScopesFromScopeOrScp) {
    auto scopes_of = [&](json over) {
        const auto r = auth::verify_jwt(ed.token("EdDSA", claims(std::move(over))), keys, kRules, kNow);
        return r.who ? r.who->scopes.to_string() : std::string("refused: ") + r.description;
    };
    EXPECT_EQ(scopes_of({{"scope", "users:read admin other:scope"}}), "users:read admin");
    EXPECT_EQ(scopes_of({{"scope", nullptr}, {"scp", json::array({"users:write", "x"})}}), "users:write");
    EXPECT_EQ(scopes_of({{"scope", nullptr}, {"scp", "users:read"}}), "users:read");
    EXPECT_EQ(scopes_of({{"scope", nullptr}}), "");
    EXPECT_EQ(scopes_of({{"scope", json::array({"users:read"})}}), "refused: the token's scope is not a string");
}

TEST_F(JwtVerifier, HeaderRules) {
    EXPECT_EQ(failure_of(rsa.token("RS256", claims(), {{"crit", json::array({"exp"})}}), keys), jwt_failure::malformed);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims(), {{"typ", "secevent+jwt"}}), keys), jwt_failure::malformed);
    EXPECT_TRUE(auth::verify_jwt(rsa.token("RS256", claims(), {{"typ", "at+jwt"}}), keys, kRules, kNow).who);
    EXPECT_EQ(failure_of(rsa.token("RS256", claims(), {{"kid", 5}}), keys), jwt_failure::malformed);
    // A key named in the header is never used.
    const signing_key stranger{"EC", "ec-1"};  // another key with the same kid
    EXPECT_EQ(failure_of(stranger.token("ES256", claims(), {{"jwk", stranger.jwk()}}), keys),
              jwt_failure::bad_signature);
}

TEST_F(JwtVerifier, MalformedTokens) {
    for (const char* t : {"", ".", "..", "a.b", "a.b.c.d", "!!.e30.AAAA", "e30..AAAA", "W10.e30.AAAA"})
        EXPECT_FALSE(auth::verify_jwt(t, keys, kRules, kNow).who) << t;
    EXPECT_EQ(failure_of("e30.e30.AAAA", keys), jwt_failure::unsupported_alg);  // {} has no alg
}

TEST(JwkSet, RefusesPrivateKeysAndKeepsOnlyUsableOnes) {
    const auto& rsa = fixtures::shared_key("RSA", "r");
    const auto& ec = fixtures::shared_key("EC", "e");
    auto priv = rsa.jwk();
    priv["d"] = "AQAB";
    auto r = auth::jwk_set::parse(fixtures::jwks_of({priv}));
    ASSERT_TRUE(std::holds_alternative<std::string>(r));
    EXPECT_NE(std::get<std::string>(r).find("private"), std::string::npos);

    auto enc = ec.jwk();
    enc["use"] = "enc";
    auto p384 = ec.jwk();
    p384["crv"] = "P-384";
    std::vector<std::string> notes;
    auto mixed = auth::jwk_set::parse(fixtures::jwks_of({enc, p384, rsa.jwk("RS512"), rsa.jwk("RS256")}), &notes);
    ASSERT_TRUE(std::holds_alternative<auth::jwk_set>(mixed));
    EXPECT_EQ(std::get<auth::jwk_set>(mixed).size(), 1u);
    EXPECT_EQ(notes.size(), 3u);

    EXPECT_TRUE(std::holds_alternative<std::string>(auth::jwk_set::parse(fixtures::jwks_of({enc}))))
        << "a set with no usable key is an error";
    EXPECT_TRUE(std::holds_alternative<std::string>(auth::jwk_set::parse("{\"keys\": 3}")));
    EXPECT_TRUE(std::holds_alternative<std::string>(auth::jwk_set::parse("not json")));
}

TEST(JwkSet, RefusesShortRsaKeys) {
    EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
    ASSERT_TRUE(small);
    BIGNUM* n = nullptr;
    EVP_PKEY_get_bn_param(small, "n", &n);
    std::string bytes(static_cast<std::size_t>(BN_num_bytes(n)), '\0');
    BN_bn2bin(n, reinterpret_cast<unsigned char*>(bytes.data()));
    BN_free(n);
    EVP_PKEY_free(small);
    const json jwk = {{"kty", "RSA"}, {"kid", "small"}, {"n", auth::base64url_encode(bytes)}, {"e", "AQAB"}};
    std::vector<std::string> notes;
    EXPECT_TRUE(std::holds_alternative<std::string>(auth::jwk_set::parse(fixtures::jwks_of({jwk}), &notes)));
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].find("2048"), std::string::npos) << notes[0];
}

}  // namespace
