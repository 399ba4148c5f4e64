#include "userapi/auth/http_fetch.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace userapi::auth {
namespace {

struct sink {
    std::string body;
    std::size_t max;
    bool too_big = false;
};

std::size_t on_data(char* data, std::size_t size, std::size_t n, void* user) {
    auto& s = *static_cast<sink*>(user);
    const auto bytes = size * n;
    if (s.body.size() + bytes > s.max) {
        s.too_big = true;
        return 0;  // curl stops with CURLE_WRITE_ERROR
    }
    s.body.append(data, bytes);
    return bytes;
}

}  // namespace

bool is_http_url(const std::string& s) { return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0; }

std::string url_for_log(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    auto rest = url.substr(scheme + 3);
    rest = rest.substr(0, rest.find_first_of("?#"));
    const auto slash = rest.find('/');
    const auto at = rest.rfind('@', slash);
    if (at != std::string::npos) rest = rest.substr(at + 1);
    return url.substr(0, scheme + 3) + rest;
}

static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto* abort = static_cast<const std::atomic<bool>*>(user);
    return abort && abort->load(std::memory_order_relaxed) ? 1 : 0;
}

std::variant<fetched, std::string> http_get(const std::string& url, std::chrono::milliseconds timeout,
                                            const std::atomic<bool>* abort, std::size_t max_bytes) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return std::string("cannot start an HTTP client");
    sink s{{}, max_bytes};
    char error[CURL_ERROR_SIZE] = "";
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
        curl_slist_append(nullptr, "Accept: application/jwk-set+json, application/json"), curl_slist_free_all);
    auto* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_USERAGENT, "userapi");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(abort));
    const auto rc = curl_easy_perform(c);
    if (s.too_big) return "the answer exceeds " + std::to_string(max_bytes) + " bytes";
    if (rc != CURLE_OK) return std::string(*error ? error : curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return "HTTP status " + std::to_string(status);
    return fetched{std::move(s.body)};
}

}  // namespace userapi::auth
