// Who a bearer token is (contract 9.3): the admin token, an API key of the key file, or a JWT
// signed by a key of the JWK Set (a file, or an http(s) URL fetched again every refresh
// period and when a token names a kid the set does not hold, at most once per 30 s). Verified
// tokens are remembered (token_memo) until their exp, at most 5 minutes, and forgotten
// whenever the credentials are loaded again.
//
// Threads: check() runs on the I/O threads; the current credentials are one immutable
// snapshot behind `mu_`, replaced whole. Files are read and URLs fetched only on the
// authenticator's own thread (started by start() when there is a key file or a JWK Set), never
// on an I/O thread; a reload or refresh that fails keeps the credentials it had and says why
// in the log.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "userapi/auth/api_keys.hpp"
#include "userapi/auth/jwk_set.hpp"
#include "userapi/auth/jwt_verifier.hpp"
#include "userapi/auth/principal.hpp"
#include "userapi/auth/token_memo.hpp"
#include "userapi/core/clock.hpp"

namespace userapi::auth {

struct options {
    std::string api_keys_file;  // empty: no API keys
    std::string jwks;           // a file, or an http:// or https:// URL; empty: no JWT
    jwt_rules rules;
    std::chrono::seconds jwks_refresh{300};
    std::chrono::seconds unknown_kid_refresh_gap{30};
    std::chrono::milliseconds fetch_timeout{10000};
    std::chrono::seconds memo_lifetime{300};
    std::string admin_token;  // empty: none
};

// A key file or JWK Set unusable at start: the message names it (the server exits 2).
class setup_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class authenticator {
public:
    // `wall` gives seconds since the epoch (exp, nbf, iat); default the system clock.
    authenticator(options o, const core::clock& steady, std::function<double()> wall = {});
    ~authenticator();
    authenticator(const authenticator&) = delete;
    authenticator& operator=(const authenticator&) = delete;

    // Loads the key file and the JWK Set (throws setup_error), then starts the thread.
    void start();

    // Reads the key file and a JWK Set file as start() would, and throws what it would; a
    // JWK Set URL is not fetched. For a check before anything else happens.
    static void check_files(const options& o);

    // API keys or a JWK Set are configured (the admin token alone is not: contract 9.1).
    bool configured() const { return !opts_.api_keys_file.empty() || !opts_.jwks.empty(); }
    bool jwks_is_url() const;

    struct verdict {
        enum kind_type { valid, invalid, unknown_kid, later } kind = invalid;
        const principal* who = nullptr;          // when valid: until this thread's next check()
        std::shared_ptr<const principal> owned;  // when valid and asked to `keep`
        const char* description = "";            // when not valid: which rule failed
    };
    // `quick`: only what the memo (or the admin token) answers; anything that needs a key file
    // lookup or a signature check is `later` (the caller asks again where it may take long).
    verdict check(std::string_view token, bool keep = false, bool quick = false);

    // The principal the memo (or the admin token) gives `token` on this thread, or null: what
    // check() finds first, without anything else. Valid until this thread's next call.
    const std::shared_ptr<const principal>* remembered(std::string_view token);

    // Constant time in the token's length.
    bool is_admin_token(std::string_view token) const;
    const std::shared_ptr<const principal>& admin_principal() const { return admin_; }

    // For a token whose kid the set lacks: fetch the JWKS URL again. true: `done` runs on the
    // authenticator's thread once that fetch has ended (joining one already asked for); false:
    // no fetch (no URL, or one for an unknown kid started less than 30 s ago).
    bool refresh_for_unknown_kid(std::function<void()> done);

    // SIGHUP: the key file and the JWK Set again, on the authenticator's thread.
    void reload();
    // The same on the calling thread; true when everything loaded (tests).
    bool reload_now();

    std::uint64_t jwks_refreshes(bool ok) const {
        return (ok ? refresh_ok_ : refresh_error_).load(std::memory_order_relaxed);
    }
    std::chrono::milliseconds fetch_timeout() const { return opts_.fetch_timeout; }
    std::size_t api_key_count() const;
    std::size_t jwk_count() const;

private:
    struct snapshot {
        std::shared_ptr<const api_key_set> keys;
        std::shared_ptr<const jwk_set> jwks;
        std::uint64_t generation = 0;
    };
    snapshot current() const;
    void install(std::shared_ptr<const api_key_set> keys, std::shared_ptr<const jwk_set> jwks);
    // Reads the key file / the JWK Set: the set, or an error in words.
    std::variant<std::shared_ptr<const api_key_set>, std::string> load_keys() const;
    std::variant<std::shared_ptr<const jwk_set>, std::string> load_jwks(bool log_notes = true) const;
    bool refresh_jwks(const char* why);  // on the authenticator's thread: a URL fetched
    void run();

    const options opts_;
    const core::clock& clock_;
    const std::function<double()> wall_;
    const std::shared_ptr<const principal> admin_;
    token_memo memo_;

    mutable std::mutex mu_;
    snapshot current_;                                 // guarded by mu_
    std::condition_variable wake_;                     // with mu_: work for the thread
    bool stopping_ = false;                            // guarded by mu_
    bool reload_wanted_ = false;                       // guarded by mu_
    bool kid_fetch_wanted_ = false;                    // guarded by mu_
    std::optional<core::steady_time> last_kid_fetch_;  // guarded by mu_
    std::vector<std::function<void()>> kid_waiters_;   // guarded by mu_
    std::atomic<bool> abort_{false};                   // ends a fetch in progress at stop
    std::atomic<std::uint64_t> refresh_ok_{0}, refresh_error_{0};
    std::thread thread_;
};

}  // namespace userapi::auth
