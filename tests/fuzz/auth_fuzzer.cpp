// Fuzz target: an Authorization field value through the bearer parser, then its token through
// the JWT verifier against a fixed JWK Set (the RFCs' example keys, whose private halves the
// fuzzer cannot have). No input may crash, and none may verify: an accepted token would be a
// forgery. A first byte of 0x01 builds the token from raw parts instead (header, claims and
// signature separated by NUL bytes, each base64url-encoded here), so the fuzzer reaches the
// JSON of the header and the claims, not only the base64 around them.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "userapi/auth/authorization.hpp"
#include "userapi/auth/base64url.hpp"
#include "userapi/auth/jwt_verifier.hpp"

namespace {

using namespace userapi::auth;

const jwk_set& keys() {
    static const jwk_set set = std::get<jwk_set>(jwk_set::parse(
        R"({"keys":[)"
        R"({"kty":"RSA","kid":"rsa","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"},)"
        R"({"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},)"
        R"({"kty":"OKP","kid":"ed","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})"));
    return set;
}

// Any issuer and audience the fuzzer might guess; the RFC examples' "joe" among them.
const jwt_rules kRules{"joe", "userapi", 60};
constexpr double kNow = 1300819000;  // before the RFC examples' exp

void check_token(std::string_view token) {
    const auto r = verify_jwt(token, keys(), kRules, kNow);
    if (r.who) std::abort();  // a token accepted without the private key
    if (r.failure == jwt_failure::none || !r.description || !*r.description) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (!in.empty() && in[0] == '\x01') {
        const auto rest = in.substr(1);
        const auto a = rest.find('\0');
        const auto b = a == std::string_view::npos ? a : rest.find('\0', a + 1);
        if (b == std::string_view::npos) return 0;
        check_token(base64url_encode(rest.substr(0, a)) + "." + base64url_encode(rest.substr(a + 1, b - a - 1)) + "." +
                    base64url_encode(rest.substr(b + 1)));
        return 0;
    }
    const auto c = parse_authorization(in);
    if (c.kind == bearer_credentials::bearer) {
        if (c.token.empty() || !is_b64token(c.token) || in.find(c.token) == std::string_view::npos) std::abort();
        check_token(c.token);
    }
    // base64url is canonical: what decodes encodes back to the same text.
    if (const auto bytes = base64url_decode(in); bytes && base64url_encode(*bytes) != in) std::abort();
    return 0;
}
