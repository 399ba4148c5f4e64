// A Beast body whose bytes are a core::shared_bytes: a cache hit's response points at the JSON
// the cache holds instead of copying it. Serialization only; no request is ever parsed into it.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>
#include <cstdint>
#include <utility>

#include "userapi/core/shared_bytes.hpp"

namespace userapi::http {

struct shared_body {
    using value_type = core::shared_bytes;

    static std::uint64_t size(const value_type& v) { return v.size(); }

    class writer {
    public:
        using const_buffers_type = boost::asio::const_buffer;

        template <bool isRequest, class Fields>
        writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& body) : body_(body) {}

        void init(boost::system::error_code& ec) { ec = {}; }

        boost::optional<std::pair<const_buffers_type, bool>> get(boost::system::error_code& ec) {
            ec = {};
            return std::make_pair(const_buffers_type(body_.data(), body_.size()), false);
        }

    private:
        const value_type& body_;
    };
};

}  // namespace userapi::http
