#include "userapi/store/conninfo.hpp"

#include <libpq-fe.h>

#include <cstring>
#include <memory>
#include <string_view>

namespace userapi::store {
namespace {

// Percent-encodes what a URI part may not hold as it is.
std::string uri_escaped(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~' || c == ',') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// A key=value value, quoted when it needs to be (libpq's rules: backslash escapes).
std::string keyword_value(std::string_view s) {
    bool plain = !s.empty();
    for (char c : s)
        if (c == ' ' || c == '\'' || c == '\\' || c == '\t') plain = false;
    if (plain) return std::string(s);
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

}  // namespace

std::string redact_conninfo(const std::string& conninfo) {
    const std::string_view text(conninfo);
    const auto scheme_end = text.find("://");
    const bool uri = text.rfind("postgresql://", 0) == 0 || text.rfind("postgres://", 0) == 0;
    char* error = nullptr;
    const std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> options(
        PQconninfoParse(conninfo.c_str(), &error), PQconninfoFree);
    if (error) PQfreemem(error);  // its text may quote the input
    if (!options)
        return (uri ? std::string(text.substr(0, scheme_end)) + "://" : std::string()) +
               "(not shown: libpq cannot parse it)";
    std::string user, host, port, dbname, rest;
    for (const auto* o = options.get(); o->keyword; ++o) {
        if (!o->val) continue;
        const std::string_view key = o->keyword;
        const bool secret = o->dispchar && o->dispchar[0] == '*';
        const std::string value = secret ? "***" : o->val;
        if (!uri) {
            if (!rest.empty()) rest += ' ';
            rest += std::string(key) + "=" + (secret ? value : keyword_value(value));
        } else if (key == "user" && !secret) {
            user = uri_escaped(value);
        } else if (key == "host") {
            host = value.find('/') == std::string::npos && value.find(':') == std::string::npos ? value : "";
            if (host.empty()) rest += (rest.empty() ? "" : "&") + std::string("host=") + uri_escaped(value);
        } else if (key == "port") {
            port = uri_escaped(value);
        } else if (key == "dbname") {
            dbname = uri_escaped(value);
        } else {
            rest += (rest.empty() ? "" : "&") + std::string(key) + "=" + (secret ? value : uri_escaped(value));
        }
    }
    if (!uri) return rest;
    std::string out(text.substr(0, scheme_end + 3));
    if (!user.empty()) out += user + "@";
    out += host;
    if (!port.empty() && port.find(',') == std::string::npos && host.find(',') == std::string::npos)
        out += ":" + port;
    else if (!port.empty())
        rest += (rest.empty() ? "" : "&") + std::string("port=") + port;
    out += "/" + dbname;
    if (!rest.empty()) out += "?" + rest;
    return out;
}

std::string redact_libpq_message(const std::string& message, const std::string& conninfo) {
    char* error = nullptr;
    const std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> options(
        PQconninfoParse(conninfo.c_str(), &error), PQconninfoFree);
    if (error) PQfreemem(error);
    if (!options)
        return "the connection string is malformed (libpq's own message is not shown: it may quote a password)";
    std::string out = message;
    for (const auto* o = options.get(); o->keyword; ++o) {
        if (!o->val || !o->dispchar || o->dispchar[0] != '*' || !*o->val) continue;
        for (auto at = out.find(o->val); at != std::string::npos; at = out.find(o->val, at + 3))
            out.replace(at, std::strlen(o->val), "***");
    }
    return out;
}

}  // namespace userapi::store
