// Users moved between stores (contract section 10): exported to NDJSON from one snapshot,
// imported from it into an empty store all at once, or migrated from store to store and then
// checked (count and checksum on both sides). Progress and a summary line go to `log`.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>

#include "userapi/core/clock.hpp"

namespace userapi::app {

// Bad input, named (an option, a line of the file, a store that is not fit): exit status 2,
// nothing committed.
class bad_input : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct move_options {
    std::chrono::milliseconds connect_timeout{10000};
    std::ostream* log = nullptr;  // progress and the summary
    bool terminal = false;        // draw a bar rather than a line per 10 %
    const core::clock* clock = nullptr;
};

// Writes the export of the store `data` to the file descriptor `fd`; returns the users written.
std::int64_t export_users(const std::string& data, int fd, const move_options& o);

// Reads an export from `fd` into the empty store `data`; returns the users imported. Every
// refusal (bad_input) names its line: 1-based, the header is line 1.
std::int64_t import_users(const std::string& data, int fd, const move_options& o);

struct migrate_check {
    std::int64_t users = 0;
    std::int64_t next_id = 0;
    std::string checksum;  // hex, the same on both sides
};

// Copies `from` into the empty store `to`, then reads `to` back and compares it with what was
// copied. Throws std::runtime_error when they differ (the copy is committed by then).
migrate_check migrate_users(const std::string& from, const std::string& to, const move_options& o);

}  // namespace userapi::app
