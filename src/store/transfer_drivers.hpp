// The engines' snapshots and loaders behind open_snapshot() and open_loader().
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "userapi/store/user_transfer.hpp"

namespace userapi::store {

std::unique_ptr<user_snapshot> open_sqlite_snapshot(const std::string& path);
std::unique_ptr<user_loader> open_sqlite_loader(const std::string& path);
std::unique_ptr<user_snapshot> open_postgres_snapshot(const std::string& uri,
                                                      std::chrono::milliseconds connect_timeout);
std::unique_ptr<user_loader> open_postgres_loader(const std::string& uri, std::chrono::milliseconds connect_timeout);

}  // namespace userapi::store
