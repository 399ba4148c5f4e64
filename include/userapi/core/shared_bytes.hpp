// Immutable bytes shared by an intrusive, thread-safe reference count. One allocation holds
// the count, the size and the bytes (a shared_ptr<const std::string> needs two and twice the
// bookkeeping), which matters when a million cached users each hold their JSON this way.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace userapi::core {

class shared_bytes {
public:
    shared_bytes() = default;
    explicit shared_bytes(std::string_view s) {
        void* p = ::operator new(sizeof(header) + s.size());
        h_ = new (p) header{{1}, static_cast<std::uint32_t>(s.size())};
        std::memcpy(reinterpret_cast<char*>(h_ + 1), s.data(), s.size());
    }
    shared_bytes(const shared_bytes& o) noexcept : h_(o.h_) {
        if (h_) h_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    shared_bytes(shared_bytes&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    shared_bytes& operator=(shared_bytes o) noexcept {
        std::swap(h_, o.h_);
        return *this;
    }
    ~shared_bytes() {
        if (h_ && h_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            h_->~header();
            ::operator delete(h_);
        }
    }

    const char* data() const { return h_ ? reinterpret_cast<const char*>(h_ + 1) : ""; }
    std::size_t size() const { return h_ ? h_->size : 0; }
    std::string_view view() const { return {data(), size()}; }
    explicit operator bool() const { return h_ != nullptr; }
    friend bool operator==(const shared_bytes& a, const shared_bytes& b) { return a.view() == b.view(); }
    friend bool operator==(const shared_bytes& a, std::string_view b) { return a.view() == b; }

private:
    struct header {
        std::atomic<std::uint32_t> refs;
        std::uint32_t size;
    };
    header* h_ = nullptr;
};

}  // namespace userapi::core
