// RFC 9457 problem details: the one place an error becomes a response body.
#pragma once

#include <string_view>

#include "userapi/http/beast_types.hpp"

namespace userapi::http {

// Sets status, Content-Type application/problem+json and the body
// {"type":"about:blank","title":<reason>,"status":N,"detail":<detail>}.
void set_problem(response& res, unsigned status, std::string_view detail);

// The answer to a write that did not complete (contract 8.2), with the extension member
// "written": false when it surely was not performed, null when its outcome is unknown.
void set_write_problem(response& res, unsigned status, std::string_view detail, bool outcome_known);

}  // namespace userapi::http
