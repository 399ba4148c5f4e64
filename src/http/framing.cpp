#include "userapi/http/framing.hpp"

#include <algorithm>
#include <array>
#include <iterator>

namespace userapi::http {
namespace {

using field = bhttp::field;

// A chunk-size line: up to 16 hex digits, the extensions, CRLF.
constexpr std::size_t kChunkLineLimit = 16 + kChunkExtensionLimit + 2;

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A line feed not preceded by a carriage return, anywhere in `s`.
bool has_bare_lf(std::string_view s) {
    for (std::size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1))
        if (i == 0 || s[i - 1] != '\r') return true;
    return false;
}

// RFC 3986 unreserved and sub-delims, by table: every request's Host goes through it.
constexpr auto kHostChars = [] {
    std::array<bool, 256> t{};
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=")) t[static_cast<unsigned char>(c)] = true;
    return t;
}();

bool is_unreserved_or_sub_delim(char c) { return kHostChars[static_cast<unsigned char>(c)]; }

}  // namespace

refusal check_pending_chunk_line(std::string_view pending) {
    if (pending.substr(0, 2) == "\r\n") pending.remove_prefix(2);
    const auto lf = pending.find('\n');
    const auto line = pending.substr(0, lf);
    if (line.size() > kChunkLineLimit)
        return {400, "chunk extensions exceed " + std::to_string(kChunkExtensionLimit) + " bytes"};
    if (lf == std::string_view::npos) return {};
    if (lf == 0 || pending[lf - 1] != '\r') return {400, "malformed chunked body: a line ends without CR"};
    // Only the last chunk ("0", any number of zeros) is followed by a trailer section.
    std::size_t digits = 0;
    while (digits < line.size() && is_hex(line[digits])) ++digits;
    const bool last = digits > 0 && std::all_of(line.begin(), line.begin() + digits, [](char c) { return c == '0'; });
    if (!last) return {};
    const auto trailers = pending.substr(lf + 1);
    if (has_bare_lf(trailers)) return {400, "malformed chunked body: a trailer line ends without CR"};
    if (trailers.size() > kTrailerSectionLimit)
        return {431, "trailer section exceeds " + std::to_string(kTrailerSectionLimit) + " bytes"};
    return {};
}

std::string smuggling_risk(const request& req) {
    const bool has_te = req.count(field::transfer_encoding) > 0;
    if (!has_te) return {};
    if (req.count(field::content_length) > 0) return "Content-Length together with Transfer-Encoding";
    if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    const std::string codings = joined_field(req, "Transfer-Encoding");
    // Only a single "chunked" is accepted: no other coding is implemented.
    std::string trimmed;
    for (char c : codings)
        if (c != ' ' && c != '\t') trimmed += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (trimmed != "chunked") return "Transfer-Encoding other than a single chunked";
    return {};
}

bool is_valid_host(std::string_view v) {
    std::string_view host = v, port;
    if (!v.empty() && v.front() == '[') {  // IP-literal
        const auto close = v.find(']');
        if (close == std::string_view::npos || close < 2) return false;
        const auto inside = v.substr(1, close - 1);
        if (!std::all_of(inside.begin(), inside.end(), [](char c) { return is_hex(c) || c == ':' || c == '.'; }))
            return false;
        host = v.substr(0, close + 1);
        const auto rest = v.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
        }
    } else {
        const auto colon = v.find(':');
        if (colon != std::string_view::npos) {
            host = v.substr(0, colon);
            port = v.substr(colon + 1);
        }
        if (host.empty()) return false;
        for (std::size_t i = 0; i < host.size(); ++i) {
            if (host[i] == '%') {  // pct-encoded
                if (i + 2 >= host.size() || !is_hex(host[i + 1]) || !is_hex(host[i + 2])) return false;
                i += 2;
            } else if (!is_unreserved_or_sub_delim(host[i])) {
                return false;
            }
        }
    }
    return port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string host_problem(const request& req) {
    const auto it = req.find(field::host);  // fields with one name are adjacent, in order
    if (it == req.end()) return req.version() >= 11 ? "an HTTP/1.1 request must carry a Host field" : "";
    if (const auto next = std::next(it); next != req.end() && next->name() == field::host)
        return "more than one Host field";
    if (!is_valid_host(it->value())) return "Host is not a valid host[:port]";
    return {};
}

std::string target_problem(std::string_view target) {
    if (!target.empty() && target.front() == '/') return {};
    for (std::string_view scheme : {"http://", "https://"})
        if (target.size() > scheme.size() &&
            std::equal(scheme.begin(), scheme.end(), target.begin(),
                       [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
            return {};
    return "the request target must be an absolute path such as /users/1";
}

}  // namespace userapi::http
