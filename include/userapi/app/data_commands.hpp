// The subcommands that move users (contract section 10): `userapi export`, `import`, `migrate`
// and `backup`, each with --help. Exit status: 0 when everything was copied; 2 for bad input,
// named on standard error (an option, a line of the file, a store that is missing, not a
// userapi store or, for import, not empty), with nothing committed; 1 when the work failed
// midway (the engine, the disk, a broken pipe).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace userapi::app {

bool is_data_command(std::string_view name);

// `args`: the subcommand's name, then its arguments.
int run_data_command(const std::vector<std::string>& args);

}  // namespace userapi::app
