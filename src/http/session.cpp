#include "userapi/http/session.hpp"

#include <array>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "userapi/core/ip_address.hpp"

namespace userapi::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using field = bhttp::field;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kHeaderLimit = 8 * 1024;

// Framing that a proxy in front of us might read differently: refuse it (contract section 4),
// whatever the parser itself tolerates. Returns a detail, or "" when the framing is sound.
std::string smuggling_risk(const request& req) {
    const bool has_te = req.count(field::transfer_encoding) > 0;
    if (!has_te) return {};
    if (req.count(field::content_length) > 0) return "Content-Length together with Transfer-Encoding";
    if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    const std::string codings = joined_field(req, "Transfer-Encoding");
    // Only a single "chunked" is accepted: no other coding is implemented.
    std::string trimmed;
    for (char c : codings)
        if (c != ' ' && c != '\t') trimmed += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (trimmed != "chunked") return "Transfer-Encoding other than a single chunked";
    return {};
}

// Half-close, then read and discard what the client still sends for a moment, so the
// kernel does not answer unread bytes with a reset that would destroy our response.
template <class Stream>
asio::awaitable<void> lingering_close(Stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(2));
    char sink[4096];
    for (std::size_t total = 0; total < (1u << 20);) {
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
        if (rec) break;
        total += n;
    }
    stream.socket().close(ec);
}

// The status line and header block of `res`, into `out`. Beast's serializer would send each
// field as a buffer of its own; one contiguous block is much cheaper to gather and send.
void render_head(const response& res, std::string& out) {
    out.clear();
    out.append(res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    char code[4] = {static_cast<char>('0' + res.result_int() / 100 % 10),
                    static_cast<char>('0' + res.result_int() / 10 % 10), static_cast<char>('0' + res.result_int() % 10),
                    ' '};
    out.append(code, 4);
    const auto reason = res.reason();
    out.append(reason.data(), reason.size());
    out.append("\r\n");
    for (const auto& f : res) {
        const auto name = f.name_string();
        const auto value = f.value();
        out.append(name.data(), name.size());
        out.append(": ");
        out.append(value.data(), value.size());
        out.append("\r\n");
    }
    out.append("\r\n");
}

// Counts a request as in flight from its last byte to its response's last byte: a graceful
// drain waits for these.
struct active_request {
    explicit active_request(server_state& s) : state(s) { state.active_requests.fetch_add(1); }
    ~active_request() { state.active_requests.fetch_sub(1); }
    active_request(const active_request&) = delete;
    active_request& operator=(const active_request&) = delete;
    server_state& state;
};

}  // namespace

template <class Stream>
asio::awaitable<void> run_session(Stream stream, core::ip_address peer, handler& h, const config::settings& cfg,
                                  server_state& state) {
    const auto header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
    const auto idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
    beast::flat_buffer buffer;
    std::string head_bytes;  // reused: after the first response, rendering allocates nothing
    bool close_gracefully = false;

    for (;;) {
        // Between requests the connection may idle; once a request starts, its whole head
        // and body must arrive within the header timeout.
        if (buffer.size() == 0) {
            stream.expires_after(idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
            if (ec) break;  // closed, reset or idle too long: nothing to answer
            buffer.commit(n);
        }
        stream.expires_after(header_timeout);

        bhttp::request_parser<bhttp::string_body> parser;  // fresh per request
        parser.header_limit(kHeaderLimit);
        parser.body_limit(cfg.max_body_bytes);

        auto reject = [&](unsigned status, std::string_view detail) {
            auto res = h.reject(parser.get(), status, detail, peer);
            res.keep_alive(false);
            res.prepare_payload();
            return res;
        };
        std::optional<response> refusal;

        auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
        if (hec == bhttp::error::end_of_stream || hec == beast::error::timeout || hec == asio::error::eof ||
            hec == asio::error::connection_reset || hec == asio::error::operation_aborted) {
            break;
        } else if (hec == bhttp::error::header_limit) {
            refusal = reject(431, "request header fields exceed 8192 bytes");
        } else if (hec == bhttp::error::body_limit) {  // a declared Content-Length over the limit
            refusal = reject(413, "request body exceeds " + std::to_string(cfg.max_body_bytes) + " bytes");
        } else if (hec) {
            refusal = reject(400, "malformed HTTP request");
        } else if (auto risk = smuggling_risk(parser.get()); !risk.empty()) {
            refusal = reject(400, "ambiguous message framing: " + risk);
        }

        if (!refusal && !parser.is_done()) {
            if (beast::iequals(parser.get()[field::expect], "100-continue")) {
                static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
                auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(cont), use_tuple);
                if (wec) break;
            }
            auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
            if (bec == bhttp::error::body_limit) {
                refusal = reject(413, "request body exceeds " + std::to_string(cfg.max_body_bytes) + " bytes");
            } else if (bec == beast::error::timeout || bec == asio::error::eof || bec == bhttp::error::end_of_stream ||
                       bec == asio::error::connection_reset) {
                break;  // gave up mid-body: no one to answer
            } else if (bec) {
                refusal = reject(400, "malformed HTTP request body");
            }
        }

        response res;
        bool keep_alive = false;
        {
            active_request in_flight(state);
            if (refusal) {
                res = std::move(*refusal);
                close_gracefully = true;
            } else {
                stream.expires_never();  // the DB may take long; the handler bounds that wait
                const request& req = parser.get();
                res = co_await h.handle(req, peer);
                keep_alive = req.keep_alive() && !state.draining.load();
                res.keep_alive(keep_alive);
                res.prepare_payload();
            }
            const bool head = !refusal && parser.get().method() == bhttp::verb::head;
            stream.expires_after(idle_timeout);  // a client that never reads is dropped
            render_head(res, head_bytes);
            const std::array<asio::const_buffer, 2> out = {
                asio::buffer(head_bytes), asio::buffer(res.body().data(), head ? 0 : res.body().size())};
            auto [wec, wn] = co_await asio::async_write(stream, out, use_tuple);
            if (wec) break;
        }
        if (!keep_alive) {
            close_gracefully = true;
            break;
        }
    }
    if (close_gracefully)
        co_await lingering_close(stream);
    else {
        boost::system::error_code ec;
        stream.socket().shutdown(asio::socket_base::shutdown_both, ec);
        stream.socket().close(ec);
    }
}

template asio::awaitable<void> run_session(beast::tcp_stream, core::ip_address, handler&, const config::settings&,
                                           server_state&);
template asio::awaitable<void> run_session(local_stream, core::ip_address, handler&, const config::settings&,
                                           server_state&);

}  // namespace userapi::http
