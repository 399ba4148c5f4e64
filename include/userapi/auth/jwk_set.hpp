// A JWK Set (RFC 7517) of public keys that sign accepted tokens, each one pinned to what it
// may verify. Rhonabwy reads each JWK (RFC 7517/7518/8037 members) and exports its public key
// as DER; OpenSSL holds it for the signature checks (jwt_verifier).
//
// Only keys that can verify an accepted algorithm are kept: RSA of at least 2048 bits (RS256,
// PS256), EC on P-256 (ES256), OKP Ed25519 (EdDSA), and when the JWK names an `alg`, only that
// one. Symmetric keys are never kept (no HMAC, RFC 8725 section 2.1), nor keys whose `use` or
// `key_ops` exclude verification. A set that holds private key material is refused whole.
// Immutable once parsed: safe to share between threads (OpenSSL keys are only read).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;

namespace userapi::auth {

enum class jws_alg { rs256, ps256, es256, eddsa };
enum class key_kind { rsa, ec_p256, ed25519 };

std::string_view alg_name(jws_alg a);
// Only the four accepted names; "none", "HS256" and anything else: nullopt.
std::optional<jws_alg> parse_alg(std::string_view name);
key_kind kind_of(jws_alg a);

struct verification_key {
    std::string kid;             // empty when the JWK has none
    std::optional<jws_alg> alg;  // the JWK's own `alg`, when it names one
    key_kind kind;
    std::shared_ptr<EVP_PKEY> pkey;

    bool can_verify(jws_alg a) const { return kind == kind_of(a) && (!alg || *alg == a); }
};

class jwk_set {
public:
    // `notes` receives one line per key left out, and why (for the log).
    static std::variant<jwk_set, std::string> parse(std::string_view json_text,
                                                    std::vector<std::string>* notes = nullptr);

    // The keys with `kid` (or, for a token without one, every key) that can verify `alg`.
    std::vector<const verification_key*> candidates(std::optional<std::string_view> kid, jws_alg alg) const;
    bool has_kid(std::string_view kid) const;
    std::size_t size() const { return keys_.size(); }

private:
    std::vector<verification_key> keys_;
};

}  // namespace userapi::auth
