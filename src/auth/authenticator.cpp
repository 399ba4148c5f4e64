#include "userapi/auth/authenticator.hpp"

#include <openssl/crypto.h>

#include <fstream>
#include <sstream>
#include <variant>

#include "userapi/auth/http_fetch.hpp"
#include "userapi/log/log.hpp"

namespace userapi::auth {
namespace {

double system_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream buf;
    buf << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return buf.str();
}

std::shared_ptr<const principal> make_admin(const std::string& token) {
    if (token.empty()) return nullptr;
    auto p = std::make_shared<principal>();
    p->identity = "admin-token";
    p->scopes.add(scope::admin);
    return p;
}

}  // namespace

authenticator::authenticator(options o, const core::clock& steady, std::function<double()> wall)
    : opts_(std::move(o)),
      clock_(steady),
      wall_(wall ? std::move(wall) : std::function<double()>(system_seconds)),
      admin_(make_admin(opts_.admin_token)) {}

authenticator::~authenticator() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    abort_ = true;
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool authenticator::jwks_is_url() const { return is_http_url(opts_.jwks); }

std::variant<std::shared_ptr<const api_key_set>, std::string> authenticator::load_keys() const {
    const auto text = read_file(opts_.api_keys_file);
    if (!text) return "--api-keys " + opts_.api_keys_file + ": cannot read it";
    auto parsed = api_key_set::parse(*text);
    if (auto* e = std::get_if<std::string>(&parsed)) return "--api-keys " + opts_.api_keys_file + ": " + *e;
    return std::make_shared<const api_key_set>(std::move(std::get<api_key_set>(parsed)));
}

std::variant<std::shared_ptr<const jwk_set>, std::string> authenticator::load_jwks(bool log_notes) const {
    const bool url = jwks_is_url();
    const std::string name = "--jwt-jwks " + (url ? url_for_log(opts_.jwks) : opts_.jwks);
    std::string text;
    if (url) {
        auto got = http_get(opts_.jwks, opts_.fetch_timeout, &abort_);
        if (auto* e = std::get_if<std::string>(&got)) return name + ": fetch failed: " + *e;
        text = std::move(std::get<fetched>(got).body);
    } else {
        auto got = read_file(opts_.jwks);
        if (!got) return name + ": cannot read it";
        text = std::move(*got);
    }
    std::vector<std::string> notes;
    auto parsed = jwk_set::parse(text, &notes);
    if (log_notes)
        for (const auto& n : notes) log::log_event(spdlog::level::warn, "JWK left out", {{"jwks", name}, {"why", n}});
    if (auto* e = std::get_if<std::string>(&parsed)) return name + ": " + *e;
    return std::make_shared<const jwk_set>(std::move(std::get<jwk_set>(parsed)));
}

void authenticator::check_files(const options& o) {
    options files = o;
    if (is_http_url(files.jwks)) files.jwks.clear();
    static const core::system_clock clock;
    const authenticator a(files, clock);
    if (!files.api_keys_file.empty())
        if (auto r = a.load_keys(); auto* e = std::get_if<std::string>(&r)) throw setup_error(*e);
    if (!files.jwks.empty())
        if (auto r = a.load_jwks(false); auto* e = std::get_if<std::string>(&r)) throw setup_error(*e);
}

void authenticator::start() {
    std::shared_ptr<const api_key_set> keys;
    std::shared_ptr<const jwk_set> jwks;
    if (!opts_.api_keys_file.empty()) {
        auto r = load_keys();
        if (auto* e = std::get_if<std::string>(&r)) throw setup_error(*e);
        keys = std::get<0>(r);
    }
    if (!opts_.jwks.empty()) {
        auto r = load_jwks();
        if (auto* e = std::get_if<std::string>(&r)) throw setup_error(*e);
        jwks = std::get<0>(r);
    }
    install(std::move(keys), std::move(jwks));
    if (configured()) thread_ = std::thread([this] { run(); });
}

authenticator::snapshot authenticator::current() const {
    std::lock_guard lock(mu_);
    return current_;
}

void authenticator::install(std::shared_ptr<const api_key_set> keys, std::shared_ptr<const jwk_set> jwks) {
    std::lock_guard lock(mu_);
    current_.keys = std::move(keys);
    current_.jwks = std::move(jwks);
    memo_.forget_all();
    current_.generation = memo_.generation();
}

std::size_t authenticator::api_key_count() const {
    const auto s = current();
    return s.keys ? s.keys->size() : 0;
}

std::size_t authenticator::jwk_count() const {
    const auto s = current();
    return s.jwks ? s.jwks->size() : 0;
}

bool authenticator::is_admin_token(std::string_view token) const {
    const auto& expected = opts_.admin_token;
    if (expected.empty()) return false;
    // Compares as many bytes as the token has, whatever the admin token's length.
    unsigned char diff = expected.size() != token.size() ? 1 : 0;
    for (std::size_t i = 0; i < token.size(); ++i)
        diff |= static_cast<unsigned char>((i < expected.size() ? expected[i] : 0) ^ token[i]);
    return diff == 0;
}

const std::shared_ptr<const principal>* authenticator::remembered(std::string_view token) {
    if (admin_ && is_admin_token(token)) return &admin_;
    return memo_.find(token, clock_.now());
}

authenticator::verdict authenticator::check(std::string_view token, bool keep, bool quick) {
    verdict v;
    const auto hold = [&](const std::shared_ptr<const principal>& p) {
        v.kind = verdict::valid;
        v.who = p.get();
        if (keep) v.owned = p;
        return v;
    };
    if (admin_ && is_admin_token(token)) return hold(admin_);
    const auto now = clock_.now();
    if (const auto* known = memo_.find(token, now)) return hold(*known);
    if (quick) {
        v.kind = verdict::later;
        return v;
    }
    const auto s = current();
    if (s.keys)
        if (auto who = s.keys->find(token)) {
            memo_.remember(token, who, now + opts_.memo_lifetime, now, s.generation);
            return hold(who);
        }
    if (s.jwks && looks_like_jwt(token)) {
        const double wall = wall_();
        auto r = verify_jwt(token, *s.jwks, opts_.rules, wall);
        if (r.who) {
            std::shared_ptr<const principal> who = std::move(r.who);
            const auto left = std::chrono::duration<double>(r.expires_at - wall);
            const auto life = std::min<std::chrono::duration<double>>(left, opts_.memo_lifetime);
            if (life.count() > 0)
                memo_.remember(token, who, now + std::chrono::duration_cast<core::duration>(life), now, s.generation);
            return hold(who);
        }
        v.kind = r.failure == jwt_failure::unknown_kid ? verdict::unknown_kid : verdict::invalid;
        v.description = r.description;
        return v;
    }
    v.description = s.jwks ? (s.keys ? "the token is neither a known API key nor a JWT"
                                     : "the token is not a JWT (three base64url parts)")
                           : "the token is not a known API key";
    return v;
}

bool authenticator::refresh_for_unknown_kid(std::function<void()> done) {
    if (!jwks_is_url()) return false;
    {
        std::lock_guard lock(mu_);
        if (stopping_ || !thread_.joinable()) return false;
        if (!kid_fetch_wanted_) {
            const auto now = clock_.now();
            if (last_kid_fetch_ && now - *last_kid_fetch_ < opts_.unknown_kid_refresh_gap) return false;
            last_kid_fetch_ = now;
            kid_fetch_wanted_ = true;
        }
        kid_waiters_.push_back(std::move(done));
    }
    wake_.notify_all();
    return true;
}

void authenticator::reload() {
    {
        std::lock_guard lock(mu_);
        reload_wanted_ = true;
    }
    wake_.notify_all();
}

bool authenticator::reload_now() {
    auto s = current();
    bool ok = true;
    if (!opts_.api_keys_file.empty()) {
        auto r = load_keys();
        if (auto* e = std::get_if<std::string>(&r)) {
            log::log_event(spdlog::level::warn, "API keys not reloaded; the old ones stay", {{"error", *e}});
            ok = false;
        } else {
            s.keys = std::get<0>(r);
        }
    }
    if (!opts_.jwks.empty()) {
        auto r = load_jwks();
        if (auto* e = std::get_if<std::string>(&r)) {
            log::log_event(spdlog::level::warn, "JWK Set not reloaded; the old keys stay", {{"error", *e}});
            refresh_error_.fetch_add(1, std::memory_order_relaxed);
            ok = false;
        } else {
            s.jwks = std::get<0>(r);
            refresh_ok_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    install(s.keys, s.jwks);  // every reload forgets the verified tokens
    log::log_event(ok ? spdlog::level::info : spdlog::level::warn, "credentials reloaded",
                   {{"api_keys", std::to_string(s.keys ? s.keys->size() : 0), true},
                    {"jwks_keys", std::to_string(s.jwks ? s.jwks->size() : 0), true},
                    {"complete", ok ? "true" : "false", true}});
    return ok;
}

bool authenticator::refresh_jwks(const char* why) {
    auto r = load_jwks();
    if (auto* e = std::get_if<std::string>(&r)) {
        refresh_error_.fetch_add(1, std::memory_order_relaxed);
        log::log_event(spdlog::level::warn, "JWK Set refresh failed; the old keys stay",
                       {{"reason", why}, {"error", *e}});
        return false;
    }
    refresh_ok_.fetch_add(1, std::memory_order_relaxed);
    const auto keys = current().keys;
    const auto& jwks = std::get<0>(r);
    log::log_event(spdlog::level::info, "JWK Set refreshed",
                   {{"reason", why}, {"keys", std::to_string(jwks->size()), true}});
    install(keys, jwks);
    return true;
}

void authenticator::run() {
    auto next_refresh = std::chrono::steady_clock::now() + opts_.jwks_refresh;
    std::unique_lock lock(mu_);
    for (;;) {
        const bool periodic = jwks_is_url();
        const auto ready = [&] { return stopping_ || reload_wanted_ || kid_fetch_wanted_; };
        if (periodic)
            wake_.wait_until(lock, next_refresh, ready);
        else
            wake_.wait(lock, ready);
        if (stopping_) return;
        if (reload_wanted_) {
            reload_wanted_ = false;
            lock.unlock();
            reload_now();
            lock.lock();
            next_refresh = std::chrono::steady_clock::now() + opts_.jwks_refresh;
        } else if (kid_fetch_wanted_) {
            lock.unlock();
            refresh_jwks("a token named an unknown kid");
            lock.lock();
            kid_fetch_wanted_ = false;
            auto waiters = std::move(kid_waiters_);
            kid_waiters_.clear();
            lock.unlock();
            for (auto& w : waiters) w();
            lock.lock();
        } else if (periodic && std::chrono::steady_clock::now() >= next_refresh) {
            lock.unlock();
            refresh_jwks("periodic");
            lock.lock();
            next_refresh = std::chrono::steady_clock::now() + opts_.jwks_refresh;
        }
    }
}

}  // namespace userapi::auth
