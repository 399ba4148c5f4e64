// The Beast message types the HTTP layer speaks. Included only by the few translation units
// that parse or serialize HTTP.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "userapi/http/shared_body.hpp"

#include <string>
#include <string_view>

namespace userapi::http {

namespace bhttp = boost::beast::http;
using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<shared_body>;

}  // namespace userapi::http

namespace userapi::http {

// Every value of a repeated header field joined with ',' (RFC 9110 section 5.3).
inline std::string joined_field(const request& req, std::string_view name) {
    std::string out;
    const auto [first, last] = req.equal_range(name);
    for (auto it = first; it != last; ++it) {
        if (!out.empty()) out += ',';
        out += it->value();
    }
    return out;
}

}  // namespace userapi::http
