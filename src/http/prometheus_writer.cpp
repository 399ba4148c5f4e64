#include "userapi/http/prometheus_writer.hpp"

#include <cmath>
#include <cstdio>

namespace userapi::http {
namespace {

// Label values escape backslash, double quote and line feed (the format's three escapes).
void append_label_value(std::string& out, std::string_view v) {
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
}

void append_value(std::string& out, double v) {
    char buf[40];
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    // Integers (counts) print exactly; others with enough digits to round-trip.
    if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.17g", v);
    out += buf;
}

}  // namespace

void prometheus_writer::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void prometheus_writer::sample(std::string_view name, labels l, double value) {
    out_ += name;
    if (l.size()) {
        out_ += '{';
        bool first = true;
        for (const auto& [k, v] : l) {
            if (!first) out_ += ',';
            first = false;
            out_ += k;
            out_ += "=\"";
            append_label_value(out_, v);
            out_ += '"';
        }
        out_ += '}';
    }
    out_ += ' ';
    append_value(out_, value);
    out_ += '\n';
}

void prometheus_writer::counter(std::string_view name, std::string_view help, double value) {
    family(name, "counter", help);
    sample(name, value);
}

void prometheus_writer::gauge(std::string_view name, std::string_view help, double value) {
    family(name, "gauge", help);
    sample(name, value);
}

}  // namespace userapi::http
