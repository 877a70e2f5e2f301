#include "protocol/json_spans.hpp"

#include <string>

#include <boost/json/basic_parser_impl.hpp>

#include "protocol/json_limits.hpp"

namespace herald::protocol {
namespace json = boost::json;

namespace {

// Parses one value and keeps nothing but, when the value is a string, its
// text (for keys).
class OneValue {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::string string;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t, json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_key(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) { return keep(s); }
  bool on_string(json::string_view s, std::size_t, json::error_code&) { return keep(s); }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // Only a top-level string is wanted; strings inside a skipped value are
  // dropped as they come (their total could be large).
  bool keep(json::string_view s) {
    if (string.size() < kMaxKept) string.append(s.data(), std::min(s.size(), kMaxKept - string.size()));
    return true;
  }
  static constexpr std::size_t kMaxKept = 256;  // keys compared are short
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void skip_space(std::string_view text, std::size_t& pos) {
  while (pos < text.size() && is_space(text[pos])) ++pos;
}

// The value at pos (no leading whitespace): its length without the
// whitespace after it. *string gets its text when it is a string.
std::optional<std::size_t> value_at(std::string_view text, std::size_t pos, std::string* string = nullptr) {
  json::basic_parser<OneValue> parser(json_parse_options());
  json::error_code ec;
  // More text follows a member's value (',' or '}'): the parser stops
  // after the value and reports how far it read.
  std::size_t used = parser.write_some(false, text.data() + pos, text.size() - pos, ec);
  if (ec || !parser.done()) return std::nullopt;
  while (used > 0 && is_space(text[pos + used - 1])) --used;
  if (string != nullptr) *string = std::move(parser.handler().string);
  return used;
}

// Calls on_member(key, value_pos, value_length) for each member of the
// object whose '{' is at pos; pos ends past its '}'. False on bad text.
template <class OnMember>
bool for_each_member(std::string_view text, std::size_t& pos, OnMember&& on_member) {
  if (pos >= text.size() || text[pos] != '{') return false;
  ++pos;
  skip_space(text, pos);
  if (pos < text.size() && text[pos] == '}') {
    ++pos;
    return true;
  }
  for (;;) {
    skip_space(text, pos);
    std::string key;
    if (pos >= text.size() || text[pos] != '"') return false;
    const auto key_length = value_at(text, pos, &key);
    if (!key_length) return false;
    pos += *key_length;
    skip_space(text, pos);
    if (pos >= text.size() || text[pos] != ':') return false;
    ++pos;
    skip_space(text, pos);
    const auto value_length = value_at(text, pos);
    if (!value_length) return false;
    on_member(key, pos, *value_length);
    pos += *value_length;
    skip_space(text, pos);
    if (pos >= text.size()) return false;
    if (text[pos] == '}') {
      ++pos;
      return true;
    }
    if (text[pos] != ',') return false;
    ++pos;
  }
}

}  // namespace

std::optional<std::size_t> received_member_size(std::string_view document, std::string_view key) {
  std::size_t pos = 0;
  skip_space(document, pos);
  std::optional<std::size_t> found;
  const bool ok = for_each_member(document, pos, [&](const std::string& k, std::size_t, std::size_t length) {
    if (k == key) found = length;
  });
  return ok ? found : std::nullopt;
}

std::map<std::size_t, std::size_t> received_batch_data_sizes(std::string_view body) {
  std::map<std::size_t, std::size_t> sizes;
  std::size_t pos = 0;
  skip_space(body, pos);
  std::optional<std::size_t> messages_at;
  if (!for_each_member(body, pos, [&](const std::string& k, std::size_t at, std::size_t) {
        if (k == "messages") messages_at = at;
      }) ||
      !messages_at || body[*messages_at] != '[') {
    return {};
  }
  pos = *messages_at + 1;
  skip_space(body, pos);
  if (pos < body.size() && body[pos] == ']') return sizes;
  for (std::size_t index = 0;; ++index) {
    skip_space(body, pos);
    if (pos >= body.size()) return {};
    if (body[pos] == '{') {
      const bool ok = for_each_member(body, pos, [&](const std::string& k, std::size_t, std::size_t length) {
        if (k == "data") sizes[index] = length;
      });
      if (!ok) return {};
    } else {
      const auto length = value_at(body, pos);
      if (!length) return {};
      pos += *length;
    }
    skip_space(body, pos);
    if (pos >= body.size()) return {};
    if (body[pos] == ']') return sizes;
    if (body[pos] != ',') return {};
    ++pos;
  }
}

}  // namespace herald::protocol
