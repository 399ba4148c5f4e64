#include "userapi/service/user_export_format.hpp"

#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "userapi/service/user_validation.hpp"

namespace userapi::service {
namespace {

using json = nlohmann::json;

constexpr const char* kWholeNumber = " must be a whole number from 1 to 9223372036854775807";

std::string parse_problem(const json::exception& e, std::size_t byte) {
    if (std::string_view(e.what()).find("UTF-8") != std::string_view::npos) return "not valid UTF-8";
    return "not valid JSON (error at byte " + std::to_string(byte) + ")";
}

// Member names come from the file: keep them short in a message.
std::string member_name(std::string_view name) {
    return "\"" + std::string(name.substr(0, 64)) + (name.size() > 64 ? "…\"" : "\"");
}

// Reads one user line without building a document: the four members, each once, each of its
// type; anything else stops the parse with the reason in `error`.
class user_line_reader final : public json::json_sax_t {
public:
    user u;
    std::string error;

    bool null() override { return wrong_type(); }
    bool boolean(bool) override { return wrong_type(); }
    bool number_integer(number_integer_t) override { return wrong_type(); }  // negative
    bool number_unsigned(number_unsigned_t v) override {
        if (depth_ != 1 || (key_ != k_id && key_ != k_version)) return wrong_type();
        if (v < 1 || v > static_cast<number_unsigned_t>(std::numeric_limits<std::int64_t>::max())) return wrong_type();
        (key_ == k_id ? u.id : u.version) = static_cast<std::int64_t>(v);
        return true;
    }
    bool number_float(number_float_t, const string_t&) override { return wrong_type(); }
    bool string(string_t& v) override {
        if (depth_ != 1 || (key_ != k_name && key_ != k_email)) return wrong_type();
        (key_ == k_name ? u.name : u.email) = std::move(v);
        return true;
    }
    bool binary(binary_t&) override { return wrong_type(); }
    bool start_object(std::size_t) override {
        if (depth_++ == 0) return true;
        return wrong_type();
    }
    bool key(string_t& k) override {
        key_ = k == "id" ? k_id : k == "name" ? k_name : k == "email" ? k_email : k == "version" ? k_version : 0;
        if (!key_) return fail("unknown member " + member_name(k) + ": a user line has id, name, email and version");
        if (seen_ & key_) return fail("member " + member_name(k) + " appears more than once");
        seen_ |= key_;
        return true;
    }
    bool end_object() override {
        --depth_;
        for (const auto& [bit, name] :
             {std::pair{k_id, "id"}, {k_name, "name"}, {k_email, "email"}, {k_version, "version"}})
            if (!(seen_ & bit)) return fail(std::string(name) + " is required");
        return true;
    }
    bool start_array(std::size_t) override { return wrong_type(); }
    bool end_array() override { return wrong_type(); }
    bool parse_error(std::size_t byte, const std::string&, const json::exception& e) override {
        if (error.empty()) error = parse_problem(e, byte);
        return false;
    }

private:
    static constexpr unsigned k_id = 1, k_name = 2, k_email = 4, k_version = 8;

    bool fail(std::string why) {
        if (error.empty()) error = std::move(why);
        return false;
    }
    bool wrong_type() {
        if (depth_ == 0) return fail("a user line must be a JSON object");
        if (key_ == k_id) return fail(std::string("id") + kWholeNumber);
        if (key_ == k_version) return fail(std::string("version") + kWholeNumber);
        return fail(std::string(key_ == k_name ? "name" : "email") + " must be a string");
    }

    int depth_ = 0;
    unsigned key_ = 0;
    unsigned seen_ = 0;
};

}  // namespace

std::string format_export_header(const export_header& h) {
    return "{\"userapi_export\":" + std::to_string(kExportFormat) + ",\"next_id\":" + std::to_string(h.next_id) +
           ",\"users\":" + std::to_string(h.users) + "}";
}

void append_export_line(std::string& out, const user& u) {
    nlohmann::ordered_json j;
    j["id"] = u.id;
    j["name"] = u.name;
    j["email"] = u.email;
    j["version"] = u.version;
    out += j.dump();
    out += '\n';
}

std::variant<export_header, export_line_error> parse_export_header(std::string_view line) {
    json j;
    try {
        j = json::parse(line.begin(), line.end());
    } catch (const json::parse_error& e) {
        return export_line_error{"the header is " + parse_problem(e, e.byte)};
    } catch (const json::exception&) {
        return export_line_error{"the header is not valid JSON (a number is out of range)"};
    }
    if (!j.is_object() || !j.contains("userapi_export"))
        return export_line_error{"not a userapi export: the first line must be {\"userapi_export\":1,...}"};
    auto whole = [&](const char* key, std::int64_t min, std::int64_t& into) -> std::string {
        const auto it = j.find(key);
        if (it == j.end()) return std::string("the header has no ") + key;
        if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX) ||
            it->get<std::int64_t>() < min)
            return std::string("the header's ") + key + " must be a whole number from " + std::to_string(min) +
                   " to 9223372036854775807";
        into = it->get<std::int64_t>();
        return {};
    };
    std::int64_t format = 0;
    export_header h;
    if (auto e = whole("userapi_export", 1, format); !e.empty()) return export_line_error{e};
    if (format != kExportFormat)
        return export_line_error{"export format " + std::to_string(format) + " is not supported (this userapi reads " +
                                 std::to_string(kExportFormat) + ")"};
    if (auto e = whole("next_id", 1, h.next_id); !e.empty()) return export_line_error{e};
    if (auto e = whole("users", 0, h.users); !e.empty()) return export_line_error{e};
    return h;
}

std::variant<user, export_line_error> parse_export_user(std::string_view line) {
    user_line_reader r;
    bool ok = false;
    try {
        ok = json::sax_parse(line.begin(), line.end(), &r);
    } catch (const json::exception& e) {  // what the reader does not catch itself
        return export_line_error{r.error.empty() ? parse_problem(e, 0) : r.error};
    }
    if (!ok || !r.error.empty()) return export_line_error{r.error.empty() ? "not valid JSON" : r.error};
    if (auto e = user_record_problem(r.u); !e.empty()) return export_line_error{e};
    return std::move(r.u);
}

std::string user_record_problem(const user& u) {
    if (u.id < 1) return std::string("id") + kWholeNumber;
    if (u.version < 1) return std::string("version") + kWholeNumber;
    if (auto e = field_problem("name", u.name); !e.empty()) return e;
    return field_problem("email", u.email);
}

}  // namespace userapi::service
