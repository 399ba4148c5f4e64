#include "userapi/http/session.hpp"

#include <array>
#include <cstddef>
#include <memory_resource>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "deadline_socket.hpp"
#include "userapi/http/framing.hpp"
#include "userapi/log/log.hpp"

namespace userapi::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using field = bhttp::field;
using request_parser = bhttp::request_parser<bhttp::string_body, fields_allocator>;

namespace {

using executor = asio::io_context::executor_type;
// The session's coroutines run on their connection's io_context by its concrete executor type:
// no type-erased executor is built or copied per operation.
template <class T>
using task = asio::awaitable<T, executor>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable_t<executor>{});

// What reading a request came to.
struct incoming {
    // gone: closed, reset or too slow; unread: the handler refuses it on its header, body unread
    enum kind_type { complete, refused, unread, gone } kind = gone;
    refusal why;
};

std::string_view pending_bytes(const beast::flat_buffer& b) {
    return {static_cast<const char*>(b.data().data()), b.size()};
}

// The checks a complete header must pass before anything else happens.
refusal check_header(const request& req) {
    if (auto risk = smuggling_risk(req); !risk.empty()) return {400, "ambiguous message framing: " + risk};
    if (auto host = host_problem(req); !host.empty()) return {400, host};
    if (auto target = target_problem(req.target()); !target.empty()) return {400, target};
    return {};
}

refusal from_parse_error(const boost::system::error_code& ec, bool header_done, std::size_t max_body) {
    if (ec == bhttp::error::header_limit)
        return {431, "request header section exceeds " + std::to_string(kHeaderSectionLimit) + " bytes"};
    if (ec == bhttp::error::body_limit) return {413, "request body exceeds " + std::to_string(max_body) + " bytes"};
    if (ec == bhttp::error::bad_chunk_extension)
        return {400, "malformed chunk extension, or chunk extensions over " + std::to_string(kChunkExtensionLimit) +
                         " bytes"};
    return {400, header_done ? "malformed HTTP request body" : "malformed HTTP request"};
}

// Bytes the fields of `req` take on the wire, line ends included.
std::size_t field_bytes(const bhttp::fields& req) {
    std::size_t n = 0;
    for (const auto& f : req) n += f.name_string().size() + 2 + f.value().size() + 2;
    return n;
}

// Reads one request into `parser`. Every byte counts against a limit as it arrives: the header
// section (8 KiB), chunk extensions, the trailer section and the body (--max-body-bytes); the
// buffer never holds more than kReadBufferLimit unparsed bytes, so memory per connection is
// bounded whatever the client sends. The caller sets the deadline.
template <class Socket>
task<incoming> read_request(deadline_socket<Socket>& stream, beast::flat_buffer& buffer, request_parser& parser,
                            std::size_t max_body, request_handler& h) {
    parser.header_limit(kHeaderSectionLimit);
    parser.body_limit(max_body);
    std::size_t header_bytes = 0, extension_bytes = 0;
    std::optional<bhttp::request_header<fields>> header;  // of a chunked request, to drop its trailers
    bool header_done = false, at_chunk_line = false;
    auto count_extensions = [&extension_bytes](std::uint64_t, std::string_view ext, boost::system::error_code& ec) {
        extension_bytes += ext.size();
        if (extension_bytes > kChunkExtensionLimit) ec = bhttp::error::bad_chunk_extension;
    };
    parser.on_chunk_header(count_extensions);

    for (;;) {
        if (buffer.size() > 0) {
            // A chunk-size line or trailer section still incomplete: refuse as soon as it breaks a
            // limit, rather than buffer what follows.
            if (at_chunk_line)
                if (auto r = check_pending_chunk_line(pending_bytes(buffer))) co_return incoming{incoming::refused, r};
            boost::system::error_code ec;
            const auto n = parser.put(buffer.data(), ec);
            buffer.consume(n);
            if (!header_done) header_bytes += n;
            const bool need_more = ec == bhttp::error::need_more;
            if (ec && !need_more)
                co_return incoming{incoming::refused, from_parse_error(ec, parser.is_header_done(), max_body)};
            if (!header_done && parser.is_header_done()) {
                header_done = true;
                if (header_bytes > kHeaderSectionLimit)
                    co_return incoming{incoming::refused, from_parse_error(bhttp::error::header_limit, true, max_body)};
                if (auto r = check_header(parser.get())) co_return incoming{incoming::refused, r};
                // Credentials are judged on the header: a refused request's body is never read
                // (nor a 100 Continue sent for it).
                if (!parser.is_done() && h.refuses_unread(parser.get())) co_return incoming{incoming::unread, {}};
                if (parser.chunked()) header.emplace(parser.get().base());
                if (!parser.is_done() && beast::iequals(parser.get()[field::expect], "100-continue")) {
                    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
                    auto [wec, wn] = co_await asio::async_write(stream.socket(), asio::buffer(cont), use_tuple);
                    if (wec) co_return incoming{};
                }
                parser.eager(true);  // from here on, parse as much of the body as has arrived
            }
            if (parser.is_done()) {
                // Trailers are read and dropped: nothing here uses them, and a trailer must never
                // pose as a header. Beast files them among the header fields, so restore those.
                if (header) {
                    const auto trailer_bytes = field_bytes(parser.get()) - field_bytes(*header) + 2;
                    parser.get().base() = std::move(*header);
                    if (trailer_bytes > kTrailerSectionLimit)
                        co_return incoming{
                            incoming::refused,
                            {431, "trailer section exceeds " + std::to_string(kTrailerSectionLimit) + " bytes"}};
                }
                co_return incoming{incoming::complete, {}};
            }
            if (need_more && !header_done && header_bytes + buffer.size() >= kHeaderSectionLimit)
                co_return incoming{incoming::refused, from_parse_error(bhttp::error::header_limit, false, max_body)};
            at_chunk_line = need_more && header_done;
            if (at_chunk_line)
                if (auto r = check_pending_chunk_line(pending_bytes(buffer))) co_return incoming{incoming::refused, r};
            if (!need_more && n > 0 && buffer.size() > 0) continue;  // it stopped at the end of the header
        }
        const auto room = buffer.max_size() - buffer.size();
        if (room == 0) co_return incoming{incoming::refused, {400, "malformed HTTP request"}};
        auto [ec, n] =
            co_await stream.socket().async_read_some(buffer.prepare(std::min<std::size_t>(room, 16384)), use_tuple);
        if (ec) co_return incoming{};
        buffer.commit(n);
    }
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

// Sends head and body in one gather, at once: the socket is in non-blocking mode, so a
// response its buffer takes whole (nearly every one) costs no trip through the event loop.
// Returns what the socket did not take (empty: all of it), or nullopt when the client is gone.
template <class Socket>
std::optional<std::array<asio::const_buffer, 2>> send_now(Socket& socket, std::string_view head,
                                                          std::string_view body) {
    std::array<asio::const_buffer, 2> out = {asio::buffer(head), asio::buffer(body)};
    boost::system::error_code ec;
    const std::size_t n = socket.write_some(out, ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return std::nullopt;
    if (n >= out[0].size()) {
        out[1] += n - out[0].size();
        out[0] = asio::const_buffer();
    } else {
        out[0] += n;
    }
    return out;
}

// Half-close, then read and discard what the client still sends for a moment, so the
// kernel does not answer unread bytes with a reset that would destroy our response.
template <class Socket>
task<void> lingering_close(deadline_socket<Socket>& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(2));
    char sink[4096];
    for (std::size_t total = 0; total < (1u << 20);) {
        auto [rec, n] = co_await stream.socket().async_read_some(asio::buffer(sink), use_tuple);
        if (rec) break;
        total += n;
    }
    stream.socket().close(ec);
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

// Outlives the session's coroutine frame: the completion handler reads it.
struct session_context {
    std::string request_id;  // of the request being answered; empty between requests
};

template <class Socket>
task<void> run_session(std::shared_ptr<deadline_socket<Socket>> connection, core::ip_address peer, request_handler& h,
                       const config::settings& cfg, server_state& state, session_context& ctx) {
    auto& stream = *connection;
    struct stop_timer {  // however the session ends, the deadline's timer lets go of the connection
        deadline_socket<Socket>& c;
        ~stop_timer() { c.cancel(); }
    } stop{stream};
    const auto executor = co_await asio::this_coro::executor;
    boost::system::error_code nb;
    stream.socket().non_blocking(true, nb);  // for send(): async operations work as before
    const std::string peer_text = peer.to_string();
    const auto header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
    const auto idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
    beast::flat_buffer buffer(kReadBufferLimit);
    std::string head_bytes;  // reused: after the first response, rendering allocates nothing
    // A request's fields and its response's live here, and the arena is reset after each
    // answer: in steady state, no field costs a heap allocation.
    alignas(std::max_align_t) std::array<std::byte, 4096> arena_bytes;
    std::pmr::monotonic_buffer_resource arena(arena_bytes.data(), arena_bytes.size(), std::pmr::new_delete_resource());
    stream.expires_after(header_timeout);  // a new connection must send its request in time
    for (bool first = true;; first = false) {
        if (!first) {
            // Between requests a connection may idle for the idle timeout; unless pipelined, the
            // next request is awaited here, not in a coroutine of its own (one frame less a request).
            if (buffer.size() == 0) {
                stream.expires_after(idle_timeout);
                // Let the other connections' ready work run first: Asio tries every read at
                // once, and right after the answer the client has rarely replied yet, so that
                // try was a failed recv per request (after the post: 0.28 at 50 connections).
                co_await asio::post(executor, asio::use_awaitable_t<http::executor>{});
                auto [ec, n] = co_await stream.socket().async_read_some(buffer.prepare(4096), use_tuple);
                if (ec) break;
                buffer.commit(n);
            }
            stream.expires_after(header_timeout);  // from its first byte, a request must arrive in time
        }
        bool keep_alive = false;
        {  // everything in the arena ends with this scope, before the arena is reset
            request_parser parser(std::piecewise_construct, std::make_tuple(),
                                  std::make_tuple(fields_allocator(&arena)));  // fresh per request
            const auto in = co_await read_request(stream, buffer, parser, cfg.max_body_bytes, h);
            if (in.kind == incoming::gone) break;
            const request& req = parser.get();
            ctx.request_id = request_id(req);
            const request_info info{peer, ctx.request_id, &arena, peer_text, in.kind == incoming::unread};
            active_request in_flight(state);
            std::optional<response> res;  // built in place: a move-assigned one would copy its fields
            request_handler::at_once quick;
            std::string_view body;  // sent after head_bytes: res's or quick's
            // What must wait (the database, a shared rate-limit store) runs as a coroutine of its
            // own on this thread; what is at hand is answered here.
            if (in.kind == incoming::refused) {
                res.emplace(co_await asio::co_spawn(executor, h.reject(req, in.why.status, in.why.detail, info),
                                                    asio::use_awaitable_t<asio::io_context::executor_type>{}));
            } else if (in.kind == incoming::unread) {  // answered, then closed: its body is still on the wire
                res.emplace(co_await asio::co_spawn(executor, h.handle(req, info),
                                                    asio::use_awaitable_t<asio::io_context::executor_type>{}));
            } else {
                quick = h.answer_at_once(req, info, head_bytes);
                if (quick.kind == request_handler::at_once::rendered) {
                    // Rendered in full for a keep-alive HTTP/1.1 request: head, then body.
                    keep_alive = true;
                    body = req.method() == bhttp::verb::head ? std::string_view() : quick.body.view();
                } else if (quick.kind == request_handler::at_once::message) {
                    res.emplace(std::move(*quick.res));
                } else {
                    stream.expires_never();  // the DB may take long; the handler bounds that wait
                    res.emplace(co_await asio::co_spawn(executor, h.handle(req, info),
                                                        asio::use_awaitable_t<asio::io_context::executor_type>{}));
                }
                if (res) keep_alive = req.keep_alive() && !state.draining.load();
            }
            if (res) {
                res->keep_alive(keep_alive);
                res->prepare_payload();
                // RFC 9110 §8.6: no Content-Length on 204, and none but the 200's own on a 304.
                const bool bodiless =
                    res->result() == bhttp::status::no_content || res->result() == bhttp::status::not_modified;
                if (bodiless) res->erase(field::content_length);
                render_head(*res, head_bytes);
                body = req.method() == bhttp::verb::head || bodiless ? std::string_view() : res->body().view();
            }
            stream.expires_after(idle_timeout);  // a client that never reads is dropped
            const auto rest = send_now(stream.socket(), head_bytes, body);
            if (!rest) break;
            if (asio::buffer_size(*rest) > 0) {  // the socket is full: the rest when it drains
                auto [ec, n] = co_await asio::async_write(stream.socket(), *rest, use_tuple);
                if (ec) break;
            }
            ctx.request_id.clear();
        }
        arena.release();
        if (!keep_alive) {
            co_await lingering_close(stream);
            co_return;
        }
    }
    boost::system::error_code ec;
    stream.socket().shutdown(asio::socket_base::shutdown_both, ec);
    stream.socket().close(ec);
}

}  // namespace

template <class Socket>
void spawn_session(Socket socket, core::ip_address peer, request_handler& h, const config::settings& cfg,
                   server_state& state, std::function<void()> on_end) {
    auto ctx = std::make_shared<session_context>();
    auto executor = socket.get_executor();
    asio::co_spawn(executor,
                   run_session(std::make_shared<deadline_socket<Socket>>(std::move(socket)), peer, h, cfg, state, *ctx),
                   [ctx, on_end = std::move(on_end)](std::exception_ptr e) {
                       if (e) {
                           std::string what = "unknown exception";
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& x) {
                               what = x.what();
                           } catch (...) {
                           }
                           log::log_event(spdlog::level::err, "connection closed by an internal error",
                                          {{"request_id", ctx->request_id}, {"error", what}});
                       }
                       if (on_end) on_end();
                   });
}

template void spawn_session(tcp_socket, core::ip_address, request_handler&, const config::settings&, server_state&,
                            std::function<void()>);
template void spawn_session(local_socket, core::ip_address, request_handler&, const config::settings&, server_state&,
                            std::function<void()>);

}  // namespace userapi::http
