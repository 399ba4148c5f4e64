// The rules about a request's form that the parser leaves to us: limits on every section of
// a message, framing a proxy could read differently, Host and the request-target form
// (contract section 4, RFC 9112). Pure functions over parsed data and raw bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "userapi/http/beast_types.hpp"

namespace userapi::http {

// Request line, fields and every line end, counted as they arrive (431 above).
inline constexpr std::size_t kHeaderSectionLimit = 8192;
// The fields after a chunked body's last chunk, with their line ends (431 above).
inline constexpr std::size_t kTrailerSectionLimit = 8192;
// Every chunk extension of one message together (400 above): nothing here reads them.
inline constexpr std::size_t kChunkExtensionLimit = 1024;
// The most unparsed bytes a connection ever holds: a chunk-size line with its extensions
// followed by a whole trailer section, or a whole header section, with room to spare.
inline constexpr std::size_t kReadBufferLimit = kHeaderSectionLimit + kTrailerSectionLimit + 4096;

// A refusal: the status and the detail a client gets. status 0: none.
struct refusal {
    unsigned status = 0;
    std::string detail;
    explicit operator bool() const { return status != 0; }
};

// `pending` is what a parser left unread in the middle of a chunked body when it asked for
// more: a chunk-size line (maybe after the CRLF that ends the previous chunk's data), and for
// the last chunk the trailer section after it. Says whether it already breaks a limit or a
// line-end rule, so the server answers at once instead of buffering what follows.
refusal check_pending_chunk_line(std::string_view pending);

// Framing that a proxy in front of us might read differently (contract section 4): a detail,
// or "" when the framing is sound.
std::string smuggling_risk(const request& req);

// RFC 9112 section 3.2: exactly one Host field with a valid host[:port] in HTTP/1.1 (at most
// one in HTTP/1.0). A detail, or "".
std::string host_problem(const request& req);

// The request-target must be origin-form ("/users/1") or absolute-form ("http://h/users/1").
// A detail, or "".
std::string target_problem(std::string_view target);

// True for a valid Host value: uri-host [ ":" port ] with a non-empty host.
bool is_valid_host(std::string_view value);

}  // namespace userapi::http
