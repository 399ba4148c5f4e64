// `userapi new-api-key ID SCOPE...` (contract 9.3): a fresh key, and the key file entry for it.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace userapi::app {

// `args` after the subcommand's name. Prints the key on the first line of `out` and the JSON
// entry to add to the key file on the second; usage errors go to `err` with exit status 2.
int new_api_key_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace userapi::app
