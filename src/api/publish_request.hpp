#pragma once
// Turns a publish JSON object (PROTOCOL.md 7, 10) into inbox messages, one
// per addressed user, or the error that refuses it. Pure: no I/O.
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>

#include "core/errc.hpp"
#include "store/message.hpp"

namespace herald::api {

struct PublishLimits {
  std::size_t max_message_bytes = 65536;
  std::size_t max_users = 1000;
  std::size_t max_batch_messages = 10000;
};

struct ItemError {
  errc code = errc::bad_request;
  std::string message;
  std::string field;
};

struct PublishItem {
  std::vector<store::NewMessage> messages;  // one per user, in the order given
  bool multi_user = false;                  // addressed with `users`
  std::optional<std::int64_t> deliver_at;   // in the future: schedule instead of append
};

// header_trace_id: from a traceparent header (it wins over the field).
// data_text: `data` as text with its numbers as sent (protocol/json_text.hpp);
// nullptr serializes the parsed value instead. data_received_size: the
// length of `data` in the request as received, whitespace and escapes
// included (PROTOCOL.md 10: the 413 size); unset, data_text's length.
std::variant<PublishItem, ItemError> parse_publish(const boost::json::object& body,
                                                   const PublishLimits& limits,
                                                   std::string_view header_trace_id,
                                                   std::int64_t now_ms,
                                                   const std::string* data_text = nullptr,
                                                   std::optional<std::size_t> data_received_size = std::nullopt);

// A whole request body of POST /v1/publish (batch=false: one item) or
// /v1/publish/batch: each item parsed or refused, in input order; or the
// error that refuses the whole body (not JSON, not an object, no messages
// array, too many messages).
using ParsedItems = std::vector<std::variant<PublishItem, ItemError>>;
std::variant<ParsedItems, ItemError> parse_publish_body(std::string_view body, bool batch,
                                                        const PublishLimits& limits,
                                                        std::string_view header_trace_id,
                                                        std::int64_t now_ms);

// The trace id of a W3C traceparent header ("00-<32 hex>-<16 hex>-<2 hex>"),
// empty if malformed.
std::string trace_id_from_traceparent(std::string_view header);

}  // namespace herald::api
