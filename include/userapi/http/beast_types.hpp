// The Beast message types the HTTP layer speaks. Their fields take a polymorphic allocator: a
// session hands each request and its response an arena that is reset after every answer, so
// a request's fields cost no heap allocation (default-constructed messages use the heap).
#pragma once

#include <cstddef>
#include <memory_resource>
#include <type_traits>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "userapi/http/shared_body.hpp"

#include <string>
#include <string_view>

namespace userapi::http {

namespace bhttp = boost::beast::http;
// An allocator over a memory resource that Beast can assign and move (std::pmr's cannot be
// assigned), and that travels with its container: a moved message keeps its arena.
template <class T>
struct resource_allocator {
    using value_type = T;
    using propagate_on_container_copy_assignment = std::true_type;
    using propagate_on_container_move_assignment = std::true_type;
    using propagate_on_container_swap = std::true_type;

    resource_allocator() noexcept = default;
    explicit resource_allocator(std::pmr::memory_resource* r) noexcept : resource(r) {}
    template <class U>
    resource_allocator(const resource_allocator<U>& o) noexcept : resource(o.resource) {}

    T* allocate(std::size_t n) { return static_cast<T*>(resource->allocate(n * sizeof(T), alignof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { resource->deallocate(p, n * sizeof(T), alignof(T)); }
    template <class U>
    friend bool operator==(const resource_allocator& a, const resource_allocator<U>& b) noexcept {
        return a.resource == b.resource;
    }

    std::pmr::memory_resource* resource = std::pmr::new_delete_resource();
};

using fields_allocator = resource_allocator<char>;
using fields = bhttp::basic_fields<fields_allocator>;
using request = bhttp::request<bhttp::string_body, fields>;
using response = bhttp::response<shared_body, fields>;

}  // namespace userapi::http

namespace userapi::http {

// Every value of a repeated header field joined with ',' (RFC 9110 section 5.3).
inline std::string joined_field(const request& req, std::string_view name) {
    std::string out;
    const auto [first, last] = req.equal_range(name);
    for (auto it = first; it != last; ++it) {
        if (!out.empty()) out += ',';
        out += it->value();
    }
    return out;
}

}  // namespace userapi::http
