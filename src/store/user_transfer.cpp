#include "userapi/store/user_transfer.hpp"

#include "transfer_drivers.hpp"

namespace userapi::store {

bool is_postgres_uri(std::string_view data) {
    return data.rfind("postgresql://", 0) == 0 || data.rfind("postgres://", 0) == 0;
}

std::unique_ptr<user_snapshot> open_snapshot(const std::string& data, std::chrono::milliseconds connect_timeout) {
    if (is_postgres_uri(data)) return open_postgres_snapshot(data, connect_timeout);
    return open_sqlite_snapshot(data);
}

std::unique_ptr<user_loader> open_loader(const std::string& data, std::chrono::milliseconds connect_timeout) {
    if (is_postgres_uri(data)) return open_postgres_loader(data, connect_timeout);
    return open_sqlite_loader(data);
}

}  // namespace userapi::store
