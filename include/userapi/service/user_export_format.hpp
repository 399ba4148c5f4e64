// The export format of users (contract section 10): NDJSON, a header line
// {"userapi_export":1,"next_id":N,"users":COUNT}, then one {"id","name","email","version"} object
// per line in ascending id order. Pure: no I/O; the same rules whichever store the users come from
// or go to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "userapi/service/user.hpp"

namespace userapi::service {

inline constexpr std::int64_t kExportFormat = 1;
// Far above any valid user line (a name of 100 code points, each written as a 12-byte surrogate
// pair escape, and a 254-character email take about 1,500 bytes), so a reader can bound a line.
inline constexpr std::size_t kMaxExportLineBytes = 65536;

struct export_header {
    std::int64_t next_id = 1;  // the id the store would assign next: above every id, ever
    std::int64_t users = 0;    // user lines that follow
};

// Why a line was refused: names the member at fault.
struct export_line_error {
    std::string detail;
};

// The header line, without the line end.
std::string format_export_header(const export_header& h);

// Appends the user's line and its "\n" to `out`.
void append_export_line(std::string& out, const user& u);

// The first line of an export. Members other than the three are allowed (a later writer may add
// some); the format version must be 1, next_id at least 1, users at least 0.
std::variant<export_header, export_line_error> parse_export_header(std::string_view line);

// A user line: exactly the members id, name, email and version, each once; id and version whole
// numbers from 1 to 2^63-1; name and email as POST /users takes them.
std::variant<user, export_line_error> parse_export_user(std::string_view line);

// "" when `u` is a user the store could hold as POST /users and PATCH leave them (name and email
// valid, id and version positive); else why not, naming the field.
std::string user_record_problem(const user& u);

}  // namespace userapi::service
