#include "api/publish_request.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <boost/json.hpp>

#include "protocol/json_limits.hpp"
#include "protocol/json_spans.hpp"
#include "protocol/json_text.hpp"
#include "core/ids.hpp"
#include "core/text.hpp"

namespace herald::api {
namespace json = boost::json;

namespace {

bool is_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::optional<std::int64_t> as_int(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.as_uint64());
  }
  if (v.is_double()) {
    // In range before the cast (found by fuzz/publish_body): converting a
    // double outside int64 is undefined behaviour.
    const double d = v.as_double();
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == std::trunc(d)) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

ItemError bad(std::string message, std::string field) {
  return ItemError{errc::bad_request, std::move(message), std::move(field)};
}

}  // namespace

std::variant<ParsedItems, ItemError> parse_publish_body(std::string_view body_text, bool batch,
                                                        const PublishLimits& limits,
                                                        std::string_view header_trace_id,
                                                        std::int64_t now_ms) {
  json::error_code ec;
  json::value body = json::parse(body_text, ec, {}, protocol::json_parse_options());
  if (ec == json::error::too_deep) {
    return ItemError{errc::invalid_json, "body nests JSON deeper than " + std::to_string(protocol::kMaxJsonDepth) + " levels", ""};
  }
  if (ec) return ItemError{errc::invalid_json, "body is not valid JSON", ""};
  if (!body.is_object()) return ItemError{errc::bad_request, "body must be a JSON object", ""};

  // The 413 size is `data` as received (PROTOCOL.md 10), which a body no
  // larger than the limit cannot exceed: only a larger body is measured.
  const bool measure = body_text.size() > limits.max_message_bytes;
  ParsedItems items;
  if (!batch) {
    const auto text = protocol::member_text(body_text, "data");
    const auto received = measure ? protocol::received_member_size(body_text, "data") : std::nullopt;
    items.push_back(
        parse_publish(body.as_object(), limits, header_trace_id, now_ms, text ? &*text : nullptr, received));
    return items;
  }
  const auto texts = protocol::batch_data_texts(body_text);
  auto text_of = [&texts](std::size_t i) -> const std::string* {
    auto it = texts.find(i);
    return it == texts.end() ? nullptr : &it->second;
  };
  const auto received_sizes =
      measure ? protocol::received_batch_data_sizes(body_text) : std::map<std::size_t, std::size_t>{};
  auto received_of = [&received_sizes](std::size_t i) -> std::optional<std::size_t> {
    auto it = received_sizes.find(i);
    return it == received_sizes.end() ? std::nullopt : std::optional<std::size_t>(it->second);
  };
  const json::value* msgs = body.as_object().if_contains("messages");
  if (msgs == nullptr || !msgs->is_array()) {
    return ItemError{errc::bad_request, "messages must be an array", "messages"};
  }
  if (msgs->as_array().size() > limits.max_batch_messages) {
    return ItemError{errc::bad_request,
                     "at most " + std::to_string(limits.max_batch_messages) + " messages per batch", "messages"};
  }
  for (const auto& m : msgs->as_array()) {
    if (!m.is_object()) {
      items.emplace_back(ItemError{errc::bad_request, "each message must be a JSON object", ""});
      continue;
    }
    items.push_back(parse_publish(m.as_object(), limits, header_trace_id, now_ms, text_of(items.size()),
                                  received_of(items.size())));
  }
  return items;
}

std::string trace_id_from_traceparent(std::string_view h) {
  // version "-" trace-id(32) "-" parent-id(16) "-" flags(2)
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return {};
  std::string_view id = h.substr(3, 32);
  if (!is_hex(id) || id == "00000000000000000000000000000000") return {};
  return std::string(id);
}

std::variant<PublishItem, ItemError> parse_publish(const json::object& body,
                                                   const PublishLimits& limits,
                                                   std::string_view header_trace_id,
                                                   std::int64_t now_ms,
                                                   const std::string* data_text,
                                                   std::optional<std::size_t> data_received_size) {
  PublishItem item;
  std::vector<std::string> users;
  const json::value* user = body.if_contains("user");
  const json::value* many = body.if_contains("users");
  if (user != nullptr && many != nullptr) return bad("give user or users, not both", "users");
  if (user != nullptr) {
    if (!user->is_string() || !is_valid_user_id(user->as_string())) {
      return bad("user must be 1..128 bytes of UTF-8 without control characters", "user");
    }
    users.emplace_back(user->as_string());
  } else if (many != nullptr) {
    if (!many->is_array() || many->as_array().empty()) return bad("users must be a non-empty array", "users");
    const auto& arr = many->as_array();
    if (arr.size() > limits.max_users) {
      return bad("at most " + std::to_string(limits.max_users) + " users per publish", "users");
    }
    for (const auto& u : arr) {
      if (!u.is_string() || !is_valid_user_id(u.as_string())) {
        return bad("every user must be 1..128 bytes of UTF-8 without control characters", "users");
      }
      users.emplace_back(u.as_string());
    }
    item.multi_user = true;
  } else {
    return bad("user or users is required", "user");
  }

  const json::value* data = body.if_contains("data");
  if (data == nullptr) return bad("data is required", "data");
  std::string data_json = data_text != nullptr ? *data_text : json::serialize(*data);
  // What is stored is never longer than what was received (whitespace
  // dropped, escapes at most as long): bounding the received text bounds both.
  const std::size_t data_size = std::max(data_json.size(), data_received_size.value_or(0));
  if (data_size > limits.max_message_bytes) {
    return ItemError{errc::payload_too_large,
                     "data is " + std::to_string(data_size) + " bytes, over the limit of " +
                         std::to_string(limits.max_message_bytes),
                     "data"};
  }

  auto optional_string = [&](std::string_view key, std::size_t max_len,
                             std::string& out) -> std::optional<ItemError> {
    const json::value* v = body.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_string()) return bad(std::string(key) + " must be a string", std::string(key));
    if (v->as_string().size() > max_len || !is_valid_utf8(v->as_string())) {
      return bad(std::string(key) + " must be at most " + std::to_string(max_len) + " bytes of UTF-8",
                 std::string(key));
    }
    out = std::string(v->as_string());
    return std::nullopt;
  };

  store::NewMessage proto;
  proto.data_json = std::move(data_json);
  proto.accepted_at_ms = now_ms;
  if (auto e = optional_string("event", 256, proto.event)) return *e;
  if (auto e = optional_string("id", 256, proto.id)) return *e;
  if (body.contains("id") && proto.id.empty()) return bad("id must not be empty", "id");
  if (auto e = optional_string("collapse_key", 256, proto.collapse_key)) return *e;
  std::string trace_field;
  if (auto e = optional_string("trace_id", 128, trace_field)) return *e;

  if (const json::value* v = body.if_contains("ttl_ms"); v != nullptr && !v->is_null()) {
    auto ttl = as_int(*v);
    if (!ttl || *ttl <= 0) return bad("ttl_ms must be a positive integer", "ttl_ms");
    proto.ttl_ms = *ttl;
  }
  if (const json::value* v = body.if_contains("priority"); v != nullptr && !v->is_null()) {
    if (!v->is_string()) return bad("priority must be high, normal or low", "priority");
    const auto& p = v->as_string();
    if (p == "high") proto.priority = store::Priority::high;
    else if (p == "normal") proto.priority = store::Priority::normal;
    else if (p == "low") proto.priority = store::Priority::low;
    else return bad("priority must be high, normal or low", "priority");
  }
  if (const json::value* v = body.if_contains("deliver_at"); v != nullptr && !v->is_null()) {
    auto at = as_int(*v);
    if (!at || *at < 0) return bad("deliver_at must be unix milliseconds", "deliver_at");
    // PROTOCOL.md 10: a deliver_at in the past appends at once.
    if (*at > now_ms) item.deliver_at = *at;
  }

  // PROTOCOL.md 10: traceparent wins over trace_id; else a new one.
  proto.trace_id = !header_trace_id.empty() ? std::string(header_trace_id)
                   : !trace_field.empty()   ? trace_field
                                            : new_trace_id();
  if (proto.id.empty()) {
    proto.id = store::generated_message_id();
    proto.id_generated = true;
  }

  item.messages.reserve(users.size());
  for (auto& u : users) {
    store::NewMessage m = proto;
    m.user = std::move(u);
    item.messages.push_back(std::move(m));
  }
  return item;
}

}  // namespace herald::api
