// What a write tells the other instances sharing a PostgreSQL store (NOTIFY userapi_users,
// sent in the writing transaction). The payload:
//   "<id> <commit time> <version> <u|d>"   a user written (u) or deleted (d) at that version
//   "* <commit time>"                      DELETE /cache: every instance empties its cache
//   "<id> <commit time>"                   the same from an instance older than versions in
//                                          notifications: a write of unknown version
// The commit time is seconds since the epoch (the store's clock), for the lag metric. The id
// comes first so an older instance, which reads only the id and the time, still understands.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace userapi::store {

struct notification {
    enum kind_type { written, deleted, unversioned, cleared } kind = written;
    std::int64_t id = 0;
    std::int64_t version = 0;         // 0 for unversioned and cleared
    std::optional<double> committed;  // seconds since the epoch, when given
};

// nullopt for a payload of none of these forms.
std::optional<notification> parse_notification(std::string_view payload);

}  // namespace userapi::store
