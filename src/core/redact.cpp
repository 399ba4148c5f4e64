#include "userapi/core/redact.hpp"

#include <regex>

namespace userapi::core {

std::string redact_password(const std::string& conninfo) {
    static const std::regex uri_password(R"(^([a-z]+://[^:/@]*:)[^@]*@)");
    static const std::regex kv_password(R"((password\s*=\s*)('[^']*'|[^\s&]+))");
    return std::regex_replace(std::regex_replace(conninfo, uri_password, "$1***@"), kv_password, "$1***");
}

}  // namespace userapi::core
