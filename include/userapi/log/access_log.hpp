// The access log, one line per request, cheap enough to leave on. Each thread formats its
// lines into a buffer of its own (no allocation once the buffer has grown, no shared lock);
// a writer thread hands full buffers, and every buffer at least every 100 ms, to the log's
// output in one write each. flush() writes everything before it returns: a drain (SIGTERM,
// SIGINT) loses no line; only SIGKILL can lose the last 100 ms.
//
// Lines have exactly the format of log_event() at level info: the text pattern
// "2026-11-26T10:04:31.255 info access key=value ..." or one JSON object per line.
//
// Thread-safe: a thread's buffer is guarded by its own mutex (taken by that thread to append,
// by the writer to take it); the set of buffers by the writer's mutex.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "userapi/log/log.hpp"

namespace userapi::log {

// Starts the writer: lines go to `fd` (stderr by default), or to `sink` when given (tests).
void start_access_log(int fd = 2, std::function<void(std::string_view)> sink = {});
// Writes every buffered line, then stops the writer. Safe to call more than once.
void stop_access_log();
// Writes every buffered line now.
void flush_access_log();

// One access line, as log_event(info, "access", fields) would write it. Without a started
// writer it goes through log_event.
void access_event(std::initializer_list<log_field> fields);

}  // namespace userapi::log
