#include "userapi/auth/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <variant>

#include <nlohmann/json.hpp>

#include "userapi/auth/base64url.hpp"

namespace userapi::auth {
namespace {

using json = nlohmann::json;

std::optional<sha256_digest> parse_hex_digest(const std::string& hex) {
    if (hex.size() != 64) return std::nullopt;
    sha256_digest d{};
    for (std::size_t i = 0; i < 32; ++i) {
        int v = 0;
        for (int k = 0; k < 2; ++k) {
            const char c = hex[2 * i + k];
            int n;
            if (c >= '0' && c <= '9')
                n = c - '0';
            else if (c >= 'a' && c <= 'f')
                n = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                n = c - 'A' + 10;
            else
                return std::nullopt;
            v = v * 16 + n;
        }
        d[i] = static_cast<unsigned char>(v);
    }
    return d;
}

std::string hex_of(const sha256_digest& d) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : d) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

// One entry of the file, checked member by member; throws the message.
std::shared_ptr<principal> parse_entry(const json& e, std::size_t index, sha256_digest& digest) {
    const std::string where = "keys[" + std::to_string(index) + "]";
    if (!e.is_object()) throw std::string(where + " must be an object");
    for (const auto& [name, v] : e.items())
        if (name != "id" && name != "sha256" && name != "scopes" && name != "rate_limit")
            throw std::string(where + ": unknown member " + name);
    auto who = std::make_shared<principal>();
    const auto id = e.find("id");
    if (id == e.end() || !id->is_string() || !valid_key_id(id->get<std::string>()))
        throw std::string(where + ".id must be 1-64 characters of A-Z a-z 0-9 . _ -");
    who->identity = "key:" + id->get<std::string>();
    const auto sha = e.find("sha256");
    std::optional<sha256_digest> d;
    if (sha != e.end() && sha->is_string()) d = parse_hex_digest(sha->get<std::string>());
    if (!d) throw std::string(where + ".sha256 must be the 64 hex digits of the key's SHA-256");
    digest = *d;
    const auto scopes = e.find("scopes");
    if (scopes == e.end() || !scopes->is_array()) throw std::string(where + ".scopes must be a list of scopes");
    for (const auto& s : *scopes) {
        const auto parsed = s.is_string() ? parse_scope(s.get<std::string>()) : std::nullopt;
        if (!parsed)
            throw std::string(where + ".scopes: " + s.dump() + " is not one of users:read, users:write, admin");
        who->scopes.add(*parsed);
    }
    if (const auto rl = e.find("rate_limit"); rl != e.end()) {
        const auto cap = rl->is_object() ? rl->find("capacity") : rl->end();
        const auto refill = rl->is_object() ? rl->find("refill_per_minute") : rl->end();
        if (!rl->is_object() || rl->size() != 2 || cap == rl->end() || refill == rl->end() ||
            !cap->is_number_integer() || !refill->is_number())
            throw std::string(where + ".rate_limit must be {\"capacity\": N, \"refill_per_minute\": R}, nothing else");
        const auto c = cap->get<double>(), r = refill->get<double>();
        if (c < 1 || c > 1e9 || !(r > 0) || r > 1e9 || !std::isfinite(r))
            throw std::string(where + ".rate_limit: capacity 1 to 1e9, refill_per_minute above 0 up to 1e9");
        who->rate_limit = core::bucket_policy{c, r / 60.0};
    }
    return who;
}

}  // namespace

bool valid_key_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    return true;
}

sha256_digest sha256_of(std::string_view data) {
    sha256_digest d{};
    unsigned int n = 0;
    if (!EVP_Digest(data.data(), data.size(), d.data(), &n, EVP_sha256(), nullptr) || n != d.size())
        throw std::runtime_error("SHA-256 is not available");
    return d;
}

std::variant<api_key_set, std::string> api_key_set::parse(std::string_view json_text) {
    json j;
    try {
        j = json::parse(json_text);
    } catch (const json::parse_error& e) {
        return "not valid JSON (error at byte " + std::to_string(e.byte) + ")";
    }
    try {
        if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array())
            throw std::string("must be an object {\"keys\": [...]}");
        for (const auto& [name, v] : j.items())
            if (name != "keys") throw std::string("unknown member " + name);
        api_key_set set;
        std::set<std::string> ids;
        std::set<sha256_digest> digests;
        std::size_t i = 0;
        for (const auto& e : j["keys"]) {
            entry en;
            en.who = parse_entry(e, i, en.digest);
            if (!ids.insert(en.who->identity).second)
                throw std::string("keys[" + std::to_string(i) + "]: the id " + en.who->identity.substr(4) +
                                  " is given twice");
            if (!digests.insert(en.digest).second)
                throw std::string("keys[" + std::to_string(i) + "]: the same sha256 as an earlier key");
            set.entries_.push_back(std::move(en));
            ++i;
        }
        return set;
    } catch (const std::string& message) {
        return message;
    }
}

std::shared_ptr<const principal> api_key_set::find(std::string_view key) const {
    const auto d = sha256_of(key);
    const entry* match = nullptr;
    for (const auto& e : entries_)  // no early exit: the time does not say which key matched
        if (CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0) match = &e;
    return match ? match->who : nullptr;
}

new_key make_api_key(std::string_view id, const std::vector<std::string>& scopes) {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no randomness available for a key");
    new_key out;
    out.key = base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
    OPENSSL_cleanse(bytes, sizeof bytes);
    json entry = json::object();
    entry["id"] = std::string(id);
    entry["sha256"] = hex_of(sha256_of(out.key));
    entry["scopes"] = scopes;
    out.entry_json = entry.dump();
    return out;
}

}  // namespace userapi::auth
