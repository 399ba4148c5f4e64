// Keys and tokens for the tests and benchmarks of auth/, made with OpenSSL: a fresh key pair
// of each kind, its public JWK, and compact JWS tokens signed with it (or tampered with).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "userapi/auth/base64url.hpp"

namespace userapi::testing {

class signing_key {
public:
    // kind: "RSA" (2048 bits), "EC" (P-256) or "OKP" (Ed25519).
    signing_key(std::string kind, std::string kid) : kind_(std::move(kind)), kid_(std::move(kid)) {
        EVP_PKEY* k = nullptr;
        if (kind_ == "RSA")
            k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
        else if (kind_ == "EC")
            k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        else
            k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
        if (!k) throw std::runtime_error("keygen failed");
        key_.reset(k, EVP_PKEY_free);
    }

    const std::string& kid() const { return kid_; }

    // The public JWK; `alg` empty: no alg member.
    nlohmann::json jwk(const std::string& alg = "") const {
        nlohmann::json j = {{"kid", kid_}, {"use", "sig"}};
        if (!alg.empty()) j["alg"] = alg;
        if (kind_ == "RSA") {
            j["kty"] = "RSA";
            j["n"] = bn_param(OSSL_PKEY_PARAM_RSA_N, 0);
            j["e"] = bn_param(OSSL_PKEY_PARAM_RSA_E, 0);
        } else if (kind_ == "EC") {
            j["kty"] = "EC";
            j["crv"] = "P-256";
            j["x"] = bn_param(OSSL_PKEY_PARAM_EC_PUB_X, 32);
            j["y"] = bn_param(OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        } else {
            unsigned char raw[32];
            size_t n = sizeof raw;
            EVP_PKEY_get_raw_public_key(key_.get(), raw, &n);
            j["kty"] = "OKP";
            j["crv"] = "Ed25519";
            j["x"] = auth::base64url_encode(std::string_view(reinterpret_cast<char*>(raw), n));
        }
        return j;
    }

    // The signature of `input` under `alg` (RS256, PS256, ES256 as R||S, EdDSA).
    std::string sign(const std::string& alg, std::string_view input) const {
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
        EVP_PKEY_CTX* pctx = nullptr;
        const EVP_MD* md = alg == "EdDSA" ? nullptr : EVP_sha256();
        if (EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key_.get()) != 1) throw std::runtime_error("sign init");
        if (alg == "PS256") {
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
        }
        size_t n = 0;
        const auto* in = reinterpret_cast<const unsigned char*>(input.data());
        EVP_DigestSign(ctx.get(), nullptr, &n, in, input.size());
        std::string sig(n, '\0');
        if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, in, input.size()) != 1)
            throw std::runtime_error("sign");
        sig.resize(n);
        if (alg != "ES256") return sig;
        const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
        std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(n)),
                                                                 ECDSA_SIG_free);
        unsigned char raw[64];
        BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), raw + 32, 32);
        return std::string(reinterpret_cast<char*>(raw), 64);
    }

    // A compact JWS of `claims`; `header` members are added to {"alg": alg, "kid": kid()}
    // (a null member removes one).
    std::string token(const std::string& alg, const nlohmann::json& claims,
                      const nlohmann::json& header = nlohmann::json::object()) const {
        nlohmann::json h = {{"alg", alg}, {"kid", kid_}, {"typ", "JWT"}};
        for (auto& [k, v] : header.items()) {
            if (v.is_null())
                h.erase(k);
            else
                h[k] = v;
        }
        const auto input = auth::base64url_encode(h.dump()) + "." + auth::base64url_encode(claims.dump());
        return input + "." + auth::base64url_encode(sign(alg, input));
    }

    // The public key as PEM (what an attacker would use as an HMAC secret).
    std::string public_pem() const {
        std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
        PEM_write_bio_PUBKEY(bio.get(), key_.get());
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio.get(), &data);
        return std::string(data, static_cast<std::size_t>(n));
    }

private:
    std::string bn_param(const char* name, int pad) const {
        BIGNUM* bn = nullptr;
        EVP_PKEY_get_bn_param(key_.get(), name, &bn);
        const int size = pad ? pad : BN_num_bytes(bn);
        std::string out(static_cast<std::size_t>(size), '\0');
        BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
        BN_free(bn);
        return auth::base64url_encode(out);
    }

    std::string kind_, kid_;
    std::shared_ptr<EVP_PKEY> key_;
};

// An HS256 token with `secret` as the key: what RFC 8725 section 2.1's attack sends.
inline std::string hs256_token(const nlohmann::json& header, const nlohmann::json& claims, std::string_view secret) {
    const auto input = auth::base64url_encode(header.dump()) + "." + auth::base64url_encode(claims.dump());
    unsigned char mac[32];
    unsigned int n = sizeof mac;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &n);
    return input + "." + auth::base64url_encode(std::string_view(reinterpret_cast<char*>(mac), n));
}

// One key per (kind, kid) for the whole test program: RSA key generation is slow, more so
// under the sanitizers.
inline const signing_key& shared_key(const std::string& kind, const std::string& kid) {
    static std::mutex mu;
    static std::map<std::pair<std::string, std::string>, std::unique_ptr<signing_key>> keys;
    std::lock_guard lock(mu);
    auto& k = keys[{kind, kid}];
    if (!k) k = std::make_unique<signing_key>(kind, kid);
    return *k;
}

inline std::string jwks_of(std::initializer_list<nlohmann::json> keys) {
    return nlohmann::json{{"keys", nlohmann::json(keys)}}.dump();
}

}  // namespace userapi::testing
