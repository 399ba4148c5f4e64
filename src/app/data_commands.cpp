#include "userapi/app/data_commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "userapi/app/progress.hpp"
#include "userapi/app/user_moves.hpp"
#include "userapi/service/user_repository.hpp"
#include "userapi/store/sqlite_backup.hpp"
#include "userapi/store/user_transfer.hpp"

namespace userapi::app {
namespace {

constexpr const char* kExitStatus =
    "Exit status: 0 when everything was copied; 2 for bad input, named on standard error, with\n"
    "nothing committed; 1 when the work failed midway.\n";

constexpr const char* kTimeoutHelp =
    "  --db-connect-timeout-ms N  how long to try reaching PostgreSQL (default 10000)\n";

struct command {
    const char* usage;
    const char* about;
    std::string options;
    std::vector<const char*> takes;     // options with a value
    std::vector<const char*> required;  // of those
    std::function<int(std::map<std::string, std::string>&, const move_options&)> run;
};

std::string help(const std::string& name, const command& c) {
    return std::string("usage: userapi ") + name + " " + c.usage + "\n\n" + c.about + "\n" + c.options +
           "  --help                     print this and exit\n\n" + kExitStatus;
}

// An output file is written beside itself and renamed when complete, so it never holds half an
// export; a FIFO or a device (/dev/stdout) is written directly.
class output_file {
public:
    explicit output_file(const std::string& path) : path_(path) {
        struct stat st {};
        direct_ = ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
        if (!direct_) partial_ = path + ".partial";
        fd_ = ::open(direct_ ? path.c_str() : partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) throw bad_input("--out " + path + ": cannot write: " + std::strerror(errno));
    }
    ~output_file() {
        if (fd_ >= 0) ::close(fd_);
        if (!done_ && !direct_) ::unlink(partial_.c_str());
    }
    int fd() const { return fd_; }
    void complete() {
        if (!direct_ && ::fsync(fd_) != 0) throw std::system_error(errno, std::generic_category(), "fsync " + partial_);
        if (::close(std::exchange(fd_, -1)) != 0) throw std::system_error(errno, std::generic_category(), "close");
        if (!direct_) std::filesystem::rename(partial_, path_);
        done_ = true;
    }

private:
    std::string path_, partial_;
    int fd_ = -1;
    bool direct_ = false, done_ = false;
};

int run_export(std::map<std::string, std::string>& o, const move_options& m) {
    if (!o.count("--out")) {
        export_users(o["--data"], STDOUT_FILENO, m);
        return 0;
    }
    std::error_code ec;
    if (std::filesystem::equivalent(o["--out"], o["--data"], ec))
        throw bad_input("--out " + o["--out"] + " is the store itself (--data)");
    output_file out(o["--out"]);
    export_users(o["--data"], out.fd(), m);
    out.complete();
    return 0;
}

int run_import(std::map<std::string, std::string>& o, const move_options& m) {
    int fd = STDIN_FILENO;
    if (o.count("--in")) {
        fd = ::open(o["--in"].c_str(), O_RDONLY | O_CLOEXEC);
        struct stat st {};
        if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            ::close(fd);
            throw bad_input("--in " + o["--in"] + ": is a folder");
        }
        if (fd < 0) throw bad_input("--in " + o["--in"] + ": cannot read: " + std::strerror(errno));
    }
    struct closer {
        int fd;
        ~closer() {
            if (fd != STDIN_FILENO) ::close(fd);
        }
    } close_in{fd};
    import_users(o["--data"], fd, m);
    return 0;
}

int run_migrate(std::map<std::string, std::string>& o, const move_options& m) {
    const auto check = migrate_users(o["--from"], o["--to"], m);
    std::cout << "migrate: checked: " << check.users << " users in both stores, checksum fnv1a-64 " << check.checksum
              << ", next id " << check.next_id << std::endl;
    return 0;
}

int run_backup(std::map<std::string, std::string>& o, const move_options& m) {
    for (const char* opt : {"--data", "--to"})
        if (store::is_postgres_uri(o[opt]))
            throw bad_input(
                std::string(opt) +
                ": backup copies SQLite files; for PostgreSQL use pg_dump, for example: pg_dump "
                "--format=custom --file userapi.dump 'postgresql://USER@HOST:PORT/DB' (docs/moving-data.md)");
    core::system_clock clock;
    std::optional<progress> p;
    int pages_per_step = 1000;
    if (o.count("--pages-per-step")) {
        const auto& t = o["--pages-per-step"];
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), pages_per_step);
        if (ec != std::errc{} || end != t.data() + t.size() || pages_per_step < 1 || pages_per_step > 1000000)
            throw bad_input("--pages-per-step: must be a whole number from 1 to 1000000, got \"" + t + "\"");
    }
    std::error_code ec;
    if (std::filesystem::exists(o["--to"], ec))
        throw bad_input("--to " + o["--to"] + " already exists: a backup never overwrites a file (remove it first)");
    store::backup_result r;
    try {
        r = store::backup_sqlite(
            o["--data"], o["--to"],
            [&](std::int64_t copied, std::int64_t total) {
                if (!p) p.emplace("backup", total, "pages", *m.log, m.terminal, m.clock ? *m.clock : clock);
                p->update(copied);
            },
            pages_per_step);
    } catch (const store::transfer_refused& e) {
        const std::string why = e.what();  // names its file: --to (created meanwhile) or --data
        throw bad_input((why.rfind(o["--to"] + " ", 0) == 0 ? "--to " : "--data ") + why);
    }
    if (!p) p.emplace("backup", 0, "pages", *m.log, m.terminal, clock);
    p->finish(r.users);
    return 0;
}

const std::map<std::string, command>& commands() {
    static const std::map<std::string, command> table = {
        {"export",
         {"[--data PATH|URI] [--out FILE]",
          "Writes the users of a store as NDJSON: a header line\n"
          "{\"userapi_export\":1,\"next_id\":N,\"users\":COUNT}, then one {\"id\",\"name\",\"email\",\"version\"}\n"
          "per line in id order, all from one consistent snapshot, while servers keep running on the\n"
          "store. Progress and a summary line go to standard error.\n",
          "  --data PATH|URI            the store: a SQLite file or a postgresql:// URI (default data/userapi.db)\n"
          "  --out FILE                 where to write (default standard output); FILE.partial until "
          "complete\n" +
              std::string(kTimeoutHelp),
          {"--data", "--out", "--db-connect-timeout-ms"},
          {},
          run_export}},
        {"import",
         {"[--data PATH|URI] [--in FILE]",
          "Reads an export into an empty store (no user, no id ever assigned; a SQLite file that does\n"
          "not exist is created), keeping ids and versions and setting the next id to the header's\n"
          "next_id. All or nothing: one transaction, committed only when every line was checked as\n"
          "POST /users checks a user, and no id or email (case-insensitively) is repeated. A refused\n"
          "line is named by its number (the header is line 1). Progress and a summary line go to\n"
          "standard error.\n",
          "  --data PATH|URI            the empty store: a SQLite file or a postgresql:// URI (default "
          "data/userapi.db)\n"
          "  --in FILE                  the export (default standard input)\n" +
              std::string(kTimeoutHelp),
          {"--data", "--in", "--db-connect-timeout-ms"},
          {},
          run_import}},
        {"migrate",
         {"--from PATH|URI --to PATH|URI",
          "Export and import in one step, from a snapshot of --from into the empty store --to, then\n"
          "a check: --to is read back and its count and checksum (over id, version, name and email)\n"
          "compared with what was copied; the check is printed on standard output.\n",
          "  --from PATH|URI            the store to copy: a SQLite file or a postgresql:// URI\n"
          "  --to PATH|URI              the empty store to fill (a SQLite file is created)\n" +
              std::string(kTimeoutHelp),
          {"--from", "--to", "--db-connect-timeout-ms"},
          {"--from", "--to"},
          run_migrate}},
        {"backup",
         {"[--data FILE] --to FILE [--pages-per-step N]",
          "A consistent copy of a SQLite store while a server runs on it, with SQLite's online backup\n"
          "API, in steps with a short pause between them. TO must not exist; the copy is checked before\n"
          "it is given that name.\n"
          "For PostgreSQL use pg_dump (docs/moving-data.md shows the command).\n",
          "  --data FILE                the SQLite store (default data/userapi.db)\n"
          "  --to FILE                  the copy to create\n"
          "  --pages-per-step N         pages copied between pauses (default 1000)\n",
          {"--data", "--to", "--pages-per-step"},
          {"--to"},
          run_backup}},
    };
    return table;
}

// Parses `--name VALUE` and `--name=VALUE`; throws bad_input naming what is wrong.
std::map<std::string, std::string> parse(const std::string& name, const command& c,
                                         const std::vector<std::string>& args, bool& wants_help) {
    std::map<std::string, std::string> out;
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::string opt = args[i];
        std::optional<std::string> value;
        if (const auto eq = opt.find('='); opt.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = opt.substr(eq + 1);
            opt.resize(eq);
        }
        if (opt == "--help" || opt == "-h") {
            wants_help = true;
            return out;
        }
        if (std::find_if(c.takes.begin(), c.takes.end(), [&](const char* t) { return opt == t; }) == c.takes.end())
            throw bad_input(opt.rfind("-", 0) == 0
                                ? "unknown option " + opt + " (see userapi " + name + " --help)"
                                : "unexpected argument \"" + opt + "\" (see userapi " + name + " --help)");
        if (!value) {
            if (i + 1 >= args.size()) throw bad_input(opt + ": missing value");
            value = args[++i];
        }
        if (value->empty()) throw bad_input(opt + ": must not be empty");
        if (!out.emplace(opt, *value).second) throw bad_input(opt + ": given more than once");
    }
    for (const char* r : c.required)
        if (!out.count(r)) throw bad_input(std::string(r) + " is required (see userapi " + name + " --help)");
    return out;
}

std::chrono::milliseconds connect_timeout(std::map<std::string, std::string>& o) {
    const auto it = o.find("--db-connect-timeout-ms");
    if (it == o.end()) return std::chrono::milliseconds(10000);
    long long ms = -1;
    const auto& t = it->second;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), ms);
    if (ec != std::errc{} || end != t.data() + t.size() || ms < 0 || ms > 3600000)
        throw bad_input("--db-connect-timeout-ms: must be a whole number from 0 to 3600000, got \"" + t + "\"");
    return std::chrono::milliseconds(ms);
}

// One line: libpq's messages continue on indented lines.
std::string one_line(std::string s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\n') {
            out += s[i];
            continue;
        }
        while (i + 1 < s.size() && (s[i + 1] == '\t' || s[i + 1] == ' ')) ++i;
        if (i + 1 < s.size()) out += ' ';
    }
    return out;
}

}  // namespace

bool is_data_command(std::string_view name) { return commands().count(std::string(name)) == 1; }

int run_data_command(const std::vector<std::string>& args) {
    const std::string name = args.at(0);
    const auto& c = commands().at(name);
    const std::string prefix = "userapi " + name + ": ";
    try {
        bool wants_help = false;
        auto options = parse(name, c, args, wants_help);
        if (wants_help) {
            std::cout << help(name, c) << std::flush;
            return 0;
        }
        if (!options.count("--data") && std::find_if(c.takes.begin(), c.takes.end(), [](const char* t) {
                                            return std::string(t) == "--data";
                                        }) != c.takes.end())
            options["--data"] = "data/userapi.db";  // the server's default
        move_options m;
        m.connect_timeout = connect_timeout(options);
        m.log = &std::cerr;
        m.terminal = stderr_is_terminal();
        return c.run(options, m);
    } catch (const bad_input& e) {
        std::cerr << prefix << one_line(e.what()) << std::endl;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << prefix << "failed: " << one_line(e.what()) << std::endl;
        return 1;
    }
}

}  // namespace userapi::app
