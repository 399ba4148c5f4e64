// A PostgreSQL connection string for logs, errors and the start-up line (contract 8.6): read
// by libpq's own parser (PQconninfoParse), so whatever libpq would take as a password (the
// URI's user-info, `password` or `sslpassword` in the query, keyword or value percent-encoded
// in any way) is what is hidden. Not a pattern over the text.
#pragma once

#include <string>

namespace userapi::store {

// The string rebuilt from what libpq parsed, every option libpq marks secret (its display
// character '*': password, sslpassword) as "***". A URI stays a URI (user, hosts and database
// in place, the rest as query parameters); key=value stays key=value. A string libpq cannot
// parse is not shown: "<scheme>://(not shown: libpq cannot parse it)".
std::string redact_conninfo(const std::string& conninfo);

// A message of libpq's about `conninfo`, fit to show: when libpq cannot parse the string its
// message may quote it (password and all), so only that it is malformed is said; otherwise
// every secret value libpq read from it is replaced by "***" wherever it appears.
std::string redact_libpq_message(const std::string& message, const std::string& conninfo);

}  // namespace userapi::store
