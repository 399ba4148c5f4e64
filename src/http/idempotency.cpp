#include "userapi/http/idempotency.hpp"

#include <openssl/evp.h>

#include <array>

namespace userapi::http {
namespace {

bool visible(std::string_view s) {
    if (s.empty() || s.size() > 255) return false;
    for (unsigned char c : s)
        if (c < 0x21 || c > 0x7e) return false;
    return true;
}

}  // namespace

std::optional<std::string> parse_idempotency_key(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {  // sf-string: \" and \\ escapes
        std::string out;
        for (std::size_t i = 1; i + 1 < v.size(); ++i) {
            char c = v[i];
            if (c == '\\') {
                if (i + 2 >= v.size() || (v[i + 1] != '"' && v[i + 1] != '\\')) return std::nullopt;
                c = v[++i];
            } else if (c == '"') {
                return std::nullopt;
            }
            out += c;
        }
        if (!visible(out)) return std::nullopt;
        return out;
    }
    if (!visible(v)) return std::nullopt;
    return std::string(v);
}

key_field idempotency_key_of(const request& req) {
    const auto [first, last] = req.equal_range("Idempotency-Key");
    if (first == last) return {};
    if (std::next(first) != last) return {true, std::nullopt};
    return {true, parse_idempotency_key(first->value())};
}

std::string request_fingerprint(const request& req) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const auto add = [ctx](std::string_view s) { EVP_DigestUpdate(ctx, s.data(), s.size()); };
    const auto if_match = joined_field(req, "If-Match");
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    for (std::string_view part :
         {std::string_view(req.method_string()), std::string_view(req.target()), std::string_view(if_match)}) {
        add(std::to_string(part.size()));  // lengths first: no two requests join into one text
        add(":");
        add(part);
    }
    add(req.body());
    EVP_DigestFinal_ex(ctx, digest.data(), &size);
    EVP_MD_CTX_free(ctx);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

}  // namespace userapi::http
