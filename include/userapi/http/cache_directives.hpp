// The request directives that ask for an answer from the store, not the cache (contract 8.3,
// RFC 9111 §5.2.1): Cache-Control no-cache or max-age=0, in any case, in a list or several
// fields; Pragma: no-cache only when no Cache-Control is sent (§5.4).
#pragma once

#include "userapi/http/beast_types.hpp"

namespace userapi::http {

// Whether `req` asks for a store read. Costs two field lookups when neither field is sent.
bool asks_for_store(const request& req);

// The same over the fields' values (for tests): `cache_control` every Cache-Control field
// joined by commas (nullopt: none sent), `pragma` likewise.
bool asks_for_store(const std::optional<std::string_view>& cache_control,
                    const std::optional<std::string_view>& pragma);

}  // namespace userapi::http
