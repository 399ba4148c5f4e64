#include "userapi/service/user_validation.hpp"

#include <algorithm>
#include <string>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace userapi::service {
namespace {

using json = nlohmann::json;

bool is_atext(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+/=?^_`{|}~-").find(c) != std::string_view::npos;
}

bool is_label(std::string_view l) {
    if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
    return std::all_of(l.begin(), l.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    });
}

// Member names are client text: keep them short in a detail.
std::string quote_name(std::string_view name) {
    std::string s = "\"";
    s.append(name.substr(0, 64));
    s.append(name.size() > 64 ? "…\"" : "\"");
    return s;
}

std::string string_member_error(const json& obj, const char* field) {
    const auto it = obj.find(field);
    if (it == obj.end()) return std::string(field) + " is required";
    if (!it->is_string()) return std::string(field) + " must be a string";
    if (it->get_ref<const std::string&>().empty()) return std::string(field) + " must not be empty";
    return {};
}

// Decodes valid UTF-8 (the JSON parser has checked it) into code points.
template <class F>
void for_each_code_point(std::string_view s, F f) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        const int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        char32_t cp = len == 1 ? b : len == 2 ? b & 0x1F : len == 3 ? b & 0x0F : b & 0x07;
        for (int k = 1; k < len && i + static_cast<std::size_t>(k) < s.size(); ++k)
            cp = cp << 6 | (static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) & 0x3F);
        f(cp);
        i += static_cast<std::size_t>(len);
    }
}

// Embedding, override and isolate controls: they reorder how the text around them displays.
bool is_bidi_control(char32_t c) { return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069); }

bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

// Code points that show nothing: white space, and format or default-ignorable characters
// (zero-width spaces and joiners, soft hyphen, variation selectors, fillers, tags).
bool is_invisible(char32_t c) {
    static constexpr std::pair<char32_t, char32_t> ranges[] = {
        {0x0009, 0x000D},   {0x0020, 0x0020},   {0x0085, 0x0085},   {0x00A0, 0x00A0}, {0x00AD, 0x00AD},
        {0x034F, 0x034F},   {0x061C, 0x061C},   {0x115F, 0x1160},   {0x1680, 0x1680}, {0x17B4, 0x17B5},
        {0x180B, 0x180F},   {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x206F}, {0x3000, 0x3000},
        {0x3164, 0x3164},   {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},   {0xFFA0, 0xFFA0}, {0xFFF0, 0xFFF8},
        {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
    };
    for (const auto& [lo, hi] : ranges)
        if (c >= lo && c <= hi) return true;
    return false;
}

}  // namespace

std::string name_problem(std::string_view name) {
    if (utf8_length(name) > kMaxNameChars) return "name must be at most 100 characters";
    bool control = false, bidi = false, visible = false;
    for_each_code_point(name, [&](char32_t c) {
        control = control || is_control(c);
        bidi = bidi || is_bidi_control(c);
        visible = visible || !is_invisible(c);
    });
    if (control) return "name must not contain control characters";
    if (bidi) return "name must not contain bidirectional control characters (U+202A-U+202E, U+2066-U+2069)";
    if (!visible) return "name must not be blank or made only of invisible characters";
    return {};
}

std::size_t utf8_length(std::string_view text) {
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool is_valid_email(std::string_view email) {
    if (email.empty() || email.size() > kMaxEmailChars) return false;
    const auto at = email.find('@');
    if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) return false;
    const auto local = email.substr(0, at);
    const auto domain = email.substr(at + 1);
    if (local.empty() || local.size() > 64 || local.front() == '.' || local.back() == '.' ||
        local.find("..") != std::string_view::npos)
        return false;
    if (!std::all_of(local.begin(), local.end(), [](char c) { return c == '.' || is_atext(c); })) return false;
    std::size_t labels = 0;
    std::string_view last;
    for (std::size_t start = 0;;) {
        const auto dot = domain.find('.', start);
        last = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (!is_label(last)) return false;
        ++labels;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return labels >= 2 && last.size() >= 2 && std::all_of(last.begin(), last.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
           });
}

namespace {

// A JSON object with no member given twice (the parser would silently merge them), or why not.
std::variant<json, invalid_user> parse_object(std::string_view body, const char* expected) {
    std::string duplicate;
    std::unordered_set<std::string> keys;
    const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::key && depth == 1 && duplicate.empty()) {
            const auto& k = parsed.get_ref<const std::string&>();
            if (!keys.insert(k).second) duplicate = k;
        }
        return true;
    };
    json obj;
    try {
        obj = json::parse(body.begin(), body.end(), on_event);
    } catch (const json::parse_error& e) {
        if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
            return invalid_user{"body is empty: expected a JSON object"};
        const std::string what = e.what();
        if (what.find("UTF-8") != std::string::npos) return invalid_user{"body is not valid UTF-8"};
        return invalid_user{"body is not valid JSON (error at byte " + std::to_string(e.byte) + ")"};
    } catch (const json::exception&) {  // e.g. a number too large for a double: 1e999
        return invalid_user{"body is not valid JSON (a number is out of range)"};
    }
    if (!obj.is_object()) return invalid_user{expected};
    if (!duplicate.empty()) return invalid_user{"member " + quote_name(duplicate) + " appears more than once"};
    for (const auto& [key, value] : obj.items()) {
        if (key == "id") return invalid_user{"member \"id\" is not allowed: ids are assigned by the server"};
        if (key == "version")
            return invalid_user{"member \"version\" is not allowed: the server keeps it (see the ETag)"};
        if (key != "name" && key != "email")
            return invalid_user{"unknown member " + quote_name(key) + ": only name and email are allowed"};
    }
    return obj;
}

}  // namespace

std::string field_problem(std::string_view field, const std::string& value) {
    if (value.empty()) return std::string(field) + " must not be empty";
    if (field == "name") return name_problem(value);
    if (value.size() > kMaxEmailChars) return "email must be at most 254 characters";
    if (!is_valid_email(value)) return "email must look like local@domain.tld";
    return {};
}

std::variant<new_user, invalid_user> parse_new_user(std::string_view body) {
    auto parsed = parse_object(body, "body must be a JSON object with name and email");
    if (auto* bad = std::get_if<invalid_user>(&parsed)) return *bad;
    const json& obj = std::get<json>(parsed);
    if (auto e = string_member_error(obj, "name"); !e.empty()) return invalid_user{e};
    if (auto e = string_member_error(obj, "email"); !e.empty()) return invalid_user{e};
    new_user u{obj["name"].get<std::string>(), obj["email"].get<std::string>()};
    if (auto e = field_problem("name", u.name); !e.empty()) return invalid_user{e};
    if (auto e = field_problem("email", u.email); !e.empty()) return invalid_user{e};
    return u;
}

std::variant<user_patch, invalid_user> parse_user_patch(std::string_view body) {
    auto parsed = parse_object(body, "body must be a JSON object with name, email or both");
    if (auto* bad = std::get_if<invalid_user>(&parsed)) return *bad;
    const json& obj = std::get<json>(parsed);
    if (obj.empty()) return invalid_user{"the patch is empty: give name, email or both"};
    user_patch p;
    for (const char* field : {"name", "email"}) {
        const auto it = obj.find(field);
        if (it == obj.end()) continue;
        // RFC 7396 would remove a member set to null; both fields are required.
        if (it->is_null()) return invalid_user{std::string(field) + " cannot be removed (null): it is required"};
        if (!it->is_string()) return invalid_user{std::string(field) + " must be a string"};
        auto value = it->get<std::string>();
        if (auto e = field_problem(field, value); !e.empty()) return invalid_user{e};
        (std::string_view(field) == "name" ? p.name : p.email) = std::move(value);
    }
    return p;
}

}  // namespace userapi::service
