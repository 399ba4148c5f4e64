#include "userapi/auth/jwk_set.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <rhonabwy.h>

#include <mutex>

#include <nlohmann/json.hpp>

namespace userapi::auth {
namespace {

using json = nlohmann::json;

void init_rhonabwy() {
    static std::once_flag once;
    std::call_once(once, [] { r_global_init(); });
}

struct jwk_deleter {
    void operator()(jwk_t* k) const { r_jwk_free(k); }
};

std::string describe(const json& k, std::size_t index) {
    std::string s = "keys[" + std::to_string(index) + "]";
    if (const auto kid = k.find("kid"); kid != k.end() && kid->is_string())
        s += " (kid " + json(kid->get<std::string>()).dump() + ")";
    return s;
}

bool allows_verify(const json& k) {
    if (const auto use = k.find("use"); use != k.end() && !(use->is_string() && use->get<std::string>() == "sig"))
        return false;
    if (const auto ops = k.find("key_ops"); ops != k.end()) {
        if (!ops->is_array()) return false;
        for (const auto& op : *ops)
            if (op.is_string() && op.get<std::string>() == "verify") return true;
        return false;
    }
    return true;
}

}  // namespace

std::string_view alg_name(jws_alg a) {
    switch (a) {
        case jws_alg::rs256:
            return "RS256";
        case jws_alg::ps256:
            return "PS256";
        case jws_alg::es256:
            return "ES256";
        case jws_alg::eddsa:
            return "EdDSA";
    }
    return "";
}

std::optional<jws_alg> parse_alg(std::string_view name) {
    for (auto a : {jws_alg::rs256, jws_alg::ps256, jws_alg::es256, jws_alg::eddsa})
        if (alg_name(a) == name) return a;
    return std::nullopt;
}

key_kind kind_of(jws_alg a) {
    switch (a) {
        case jws_alg::rs256:
        case jws_alg::ps256:
            return key_kind::rsa;
        case jws_alg::es256:
            return key_kind::ec_p256;
        case jws_alg::eddsa:
            break;
    }
    return key_kind::ed25519;
}

std::variant<jwk_set, std::string> jwk_set::parse(std::string_view json_text, std::vector<std::string>* notes) {
    init_rhonabwy();
    json j;
    try {
        j = json::parse(json_text);
    } catch (const json::parse_error& e) {
        return "not valid JSON (error at byte " + std::to_string(e.byte) + ")";
    }
    if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array())
        return std::string("not a JWK Set: an object {\"keys\": [...]} is expected");
    const auto note = [notes](std::string s) {
        if (notes) notes->push_back(std::move(s));
    };
    jwk_set set;
    std::size_t index = 0;
    for (const auto& k : j["keys"]) {
        const auto name = describe(k, index++);
        if (!k.is_object()) return name + " is not an object";
        const std::string kty = k.value("kty", "");
        if (kty != "oct" && (k.contains("d") || k.contains("p") || k.contains("q")))
            return name + " holds private key material; publish public keys only";
        if (kty == "oct") {
            note(name + " left out: a symmetric key (HMAC is never accepted)");
            continue;
        }
        if (!allows_verify(k)) {
            note(name + " left out: its use or key_ops exclude verifying signatures");
            continue;
        }
        verification_key vk;
        if (const auto kid = k.find("kid"); kid != k.end()) {
            if (!kid->is_string()) return name + ": kid must be a string";
            vk.kid = kid->get<std::string>();
        }
        if (const auto alg = k.find("alg"); alg != k.end()) {
            vk.alg = alg->is_string() ? parse_alg(alg->get<std::string>()) : std::nullopt;
            if (!vk.alg) {
                note(name + " left out: its alg " + alg->dump() + " is none of RS256, PS256, ES256, EdDSA");
                continue;
            }
        }
        jwk_t* raw = nullptr;
        if (r_jwk_init(&raw) != RHN_OK) return std::string("out of memory reading the JWK Set");
        std::unique_ptr<jwk_t, jwk_deleter> jwk(raw);
        if (r_jwk_import_from_json_str(jwk.get(), k.dump().c_str()) != RHN_OK) {
            note(name + " left out: not a valid JWK of a supported key type (RSA, EC, OKP)");
            continue;
        }
        unsigned bits = 0;
        const int type = r_jwk_key_type(jwk.get(), &bits, R_FLAG_IGNORE_REMOTE);
        if (type & R_KEY_TYPE_PRIVATE) return name + " holds private key material; publish public keys only";
        if (!(type & R_KEY_TYPE_PUBLIC)) {
            note(name + " left out: not a public key");
            continue;
        }
        if (type & R_KEY_TYPE_RSA) {
            vk.kind = key_kind::rsa;
            if (bits < 2048) {
                note(name + " left out: an RSA key of " + std::to_string(bits) + " bits (at least 2048 needed)");
                continue;
            }
        } else if ((type & R_KEY_TYPE_EC) && k.value("crv", "") == "P-256") {
            vk.kind = key_kind::ec_p256;
        } else if ((type & R_KEY_TYPE_EDDSA) && k.value("crv", "") == "Ed25519") {
            vk.kind = key_kind::ed25519;
        } else {
            note(name + " left out: only RSA, EC P-256 and OKP Ed25519 keys verify accepted tokens");
            continue;
        }
        if (vk.alg && kind_of(*vk.alg) != vk.kind) {
            note(name + " left out: its alg " + std::string(alg_name(*vk.alg)) + " does not fit its key type");
            continue;
        }
        unsigned char der[8192];
        std::size_t der_len = sizeof der;
        if (r_jwk_export_to_pem_der(jwk.get(), R_FORMAT_DER, der, &der_len, R_FLAG_IGNORE_REMOTE) != RHN_OK) {
            note(name + " left out: its public key could not be exported");
            continue;
        }
        const unsigned char* p = der;
        EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(der_len));
        if (!pkey) {
            note(name + " left out: OpenSSL could not read its public key");
            continue;
        }
        vk.pkey = std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
        char group[32] = "";
        std::size_t group_len = 0;
        const bool p256 = EVP_PKEY_is_a(pkey, "EC") &&
                          EVP_PKEY_get_group_name(pkey, group, sizeof group, &group_len) == 1 &&
                          std::string_view(group, group_len) == "prime256v1";
        const bool fits = (vk.kind == key_kind::rsa && EVP_PKEY_is_a(pkey, "RSA")) ||
                          (vk.kind == key_kind::ec_p256 && p256) ||
                          (vk.kind == key_kind::ed25519 && EVP_PKEY_is_a(pkey, "ED25519"));
        if (!fits) {
            note(name + " left out: its exported key is not of its JWK's type");
            continue;
        }
        set.keys_.push_back(std::move(vk));
    }
    if (set.keys_.empty()) return std::string("no key in the set can verify RS256, PS256, ES256 or EdDSA tokens");
    return set;
}

std::vector<const verification_key*> jwk_set::candidates(std::optional<std::string_view> kid, jws_alg alg) const {
    std::vector<const verification_key*> out;
    for (const auto& k : keys_)
        if ((!kid || k.kid == *kid) && k.can_verify(alg)) out.push_back(&k);
    return out;
}

bool jwk_set::has_kid(std::string_view kid) const {
    for (const auto& k : keys_)
        if (k.kid == kid) return true;
    return false;
}

}  // namespace userapi::auth
