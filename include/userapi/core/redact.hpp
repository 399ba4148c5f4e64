// Connection strings in logs, errors and /cache-status: passwords replaced by "***".
#pragma once

#include <string>

namespace userapi::core {

// postgresql://user:secret@host/db -> postgresql://user:***@host/db; password=secret (a
// keyword, or a URI query parameter) -> password=***. Anything else is returned as it is.
std::string redact_password(const std::string& conninfo);

}  // namespace userapi::core
