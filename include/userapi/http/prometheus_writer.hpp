// The one writer of the Prometheus text exposition format (version 0.0.4): every family gets
// its HELP and TYPE lines once, then its samples. Not thread-safe: one scrape, one writer.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace userapi::http {

class prometheus_writer {
public:
    using labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

    explicit prometheus_writer(std::string& out) : out_(out) {}

    // Starts a family: `type` is counter, gauge or histogram.
    void family(std::string_view name, std::string_view type, std::string_view help);
    // One sample of the current family (or, for a histogram, `name` with its suffix).
    void sample(std::string_view name, labels l, double value);
    void sample(std::string_view name, double value) { sample(name, {}, value); }

    // A family with one unlabelled sample.
    void counter(std::string_view name, std::string_view help, double value);
    void gauge(std::string_view name, std::string_view help, double value);

private:
    std::string& out_;
};

}  // namespace userapi::http
