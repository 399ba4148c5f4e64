#include "userapi/app/new_api_key.hpp"

#include <ostream>

#include "userapi/auth/api_keys.hpp"
#include "userapi/auth/scopes.hpp"

namespace userapi::app {

int new_api_key_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    static constexpr const char* kUsage =
        "usage: userapi new-api-key ID SCOPE...\n"
        "  ID     the key's name in logs and its rate-limit bucket (key:ID): 1-64 of A-Z a-z 0-9 . _ -\n"
        "  SCOPE  users:read, users:write or admin (one or more)\n"
        "Prints a new key (keep it secret: it is shown once) and the entry to add to the --api-keys file.\n";
    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        out << kUsage;
        return 0;
    }
    if (args.size() < 2) {
        err << "userapi new-api-key: an ID and at least one SCOPE are needed\n" << kUsage;
        return 2;
    }
    if (!auth::valid_key_id(args[0])) {
        err << "userapi new-api-key: ID must be 1-64 characters of A-Z a-z 0-9 . _ -\n";
        return 2;
    }
    std::vector<std::string> scopes;
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (!auth::parse_scope(args[i])) {
            err << "userapi new-api-key: \"" << args[i] << "\" is not one of users:read, users:write, admin\n";
            return 2;
        }
        scopes.push_back(args[i]);
    }
    const auto k = auth::make_api_key(args[0], scopes);
    out << k.key << "\n" << k.entry_json << "\n" << std::flush;
    return 0;
}

}  // namespace userapi::app
