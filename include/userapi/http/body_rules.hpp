// What a request body must declare before it is parsed: exactly one Content-Type naming an
// accepted media type with no charset but utf-8, and no content coding (none is supported).
#pragma once

#include <initializer_list>
#include <string_view>

#include "userapi/http/beast_types.hpp"
#include "userapi/http/framing.hpp"

namespace userapi::http {

// "" when `value` is one of `accepted` (case-insensitive) with well-formed parameters and any
// charset utf-8; else why not.
std::string media_type_problem(std::string_view value, std::initializer_list<std::string_view> accepted);

// 400 for two Content-Type fields, 415 for a wrong media type, charset or any content coding.
refusal body_problem(const request& req, std::initializer_list<std::string_view> accepted);

}  // namespace userapi::http
