// base64url without padding (RFC 4648 section 5, as JWS uses it, RFC 7515 section 2). The
// decoder is strict: only the URL alphabet, no padding, no blanks, and the unused low bits of
// the last character zero, so each byte string has exactly one encoding (a flipped bit in a
// token is never the same token).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace userapi::auth {

std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace userapi::auth
