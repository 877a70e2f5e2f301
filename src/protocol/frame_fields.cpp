#include "protocol/frame_fields.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include "protocol/frame_codec.hpp"
#include "protocol/json_limits.hpp"
#include "protocol/json_text_writer.hpp"

namespace herald::protocol {
namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(FrameKey::count_)> key_names = {
    "type", "seq", "upto", "id", "event", "data", "ts", "attempt", "trace_id",
    "conn_id", "user", "device", "epoch", "head_seq", "resume_from", "recovered", "heartbeat_ms",
    "idle_timeout_ms", "max_inflight", "server_time", "code", "message", "exp", "token"};

bool keeps_text(FrameKey k) { return k == FrameKey::data || k == FrameKey::id || k == FrameKey::ts; }

// Depth 0 is the document, 1 the members of the frame object. A member of
// interest that is an object or array is written out (when its text is kept)
// until the parser is back at depth 1.
class FrameHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  explicit FrameHandler(FrameFields& fields) : fields_(fields) {}

  bool not_object() const { return !top_is_object_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code&) {
    if (depth_ == 0) {
      top_is_object_ = true;
    } else {
      open_composite();
      if (writing_) writer_.begin_object();
    }
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    --depth_;
    if (depth_ > 0) {
      if (writing_) writer_.end_object();
      close_composite();
    }
    return true;
  }
  bool on_array_begin(json::error_code&) {
    if (depth_ > 0) {
      open_composite();
      if (writing_) writer_.begin_array();
    }
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    --depth_;
    if (depth_ > 0) {
      if (writing_) writer_.end_array();
      close_composite();
    }
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (depth_ == 1 || writing_) part_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    const std::string_view k = whole(s);
    if (depth_ == 1) {
      known_ = false;
      for (std::size_t i = 0; i < key_names.size(); ++i) {
        if (key_names[i] == k) {
          current_key_ = static_cast<FrameKey>(i);
          known_ = true;
          break;
        }
      }
    } else if (writing_) {
      writer_.key(k);
    }
    part_.clear();
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    if (wanted() || writing_) part_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    const std::string_view v = whole(s);
    if (writing_) {
      writer_.string(v);
    } else if (wanted()) {
      FrameValue& f = reset_current(FrameValue::Kind::string);
      f.str.assign(v);
      if (keeps_text(current_key_)) {
        writer_.string(v);
        f.text = writer_.take();
      }
    }
    part_.clear();
    return true;
  }

  bool on_number_part(json::string_view s, json::error_code&) {
    if (wanted() || writing_) part_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t v, json::string_view s, json::error_code&) {
    if (FrameValue* f = scalar(FrameValue::Kind::int64, whole(s))) f->i64 = v;
    part_.clear();
    return true;
  }
  bool on_uint64(std::uint64_t v, json::string_view s, json::error_code&) {
    if (FrameValue* f = scalar(FrameValue::Kind::uint64, whole(s))) f->u64 = v;
    part_.clear();
    return true;
  }
  bool on_double(double v, json::string_view s, json::error_code&) {
    if (FrameValue* f = scalar(FrameValue::Kind::real, whole(s))) f->real = v;
    part_.clear();
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    if (FrameValue* f = scalar(FrameValue::Kind::boolean, b ? "true" : "false")) f->boolean = b;
    return true;
  }
  bool on_null(json::error_code&) {
    scalar(FrameValue::Kind::null, "null");
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // A value at depth 1 with a key we keep.
  bool wanted() const { return depth_ == 1 && known_; }

  // The token: its earlier parts (if it was split) and the last one.
  std::string_view whole(json::string_view last) {
    if (part_.empty()) return {last.data(), last.size()};
    part_.append(last.data(), last.size());
    return part_;
  }

  FrameValue& reset_current(FrameValue::Kind kind) {
    FrameValue& f = fields_.reset(current_key_);
    f.kind = kind;
    return f;
  }

  // A number or literal: inside a written value, or a member of its own.
  FrameValue* scalar(FrameValue::Kind kind, std::string_view text) {
    if (writing_) {
      if (kind == FrameValue::Kind::int64 || kind == FrameValue::Kind::uint64 || kind == FrameValue::Kind::real) {
        writer_.number(text);
      } else {
        writer_.literal(text);
      }
      return nullptr;
    }
    if (!wanted()) return nullptr;
    FrameValue& f = reset_current(kind);
    if (keeps_text(current_key_)) f.text.assign(text);
    return &f;
  }

  // An object or array begins at depth `depth_`.
  void open_composite() {
    if (!wanted()) return;
    reset_current(FrameValue::Kind::composite);
    if (keeps_text(current_key_)) {
      writing_ = true;
      writer_.clear();
    }
  }
  // One ended and the parser is back at depth `depth_`.
  void close_composite() {
    if (depth_ == 1 && writing_) {
      writing_ = false;
      fields_[current_key_].text = writer_.take();
    }
  }

  FrameFields& fields_;
  int depth_ = 0;
  bool top_is_object_ = false;
  bool known_ = false;  // the member being read is kept: current_key_
  FrameKey current_key_ = FrameKey::type;
  bool writing_ = false;
  JsonTextWriter writer_;
  std::string part_;
};

const FrameValue absent_value;

}  // namespace

const FrameValue& FrameFields::operator[](FrameKey k) const {
  const auto slot = slot_[static_cast<std::size_t>(k)];
  return slot == 0 ? absent_value : values_[slot - 1];
}

FrameValue& FrameFields::operator[](FrameKey k) {
  const auto slot = slot_[static_cast<std::size_t>(k)];
  return slot == 0 ? reset(k) : values_[slot - 1];
}

FrameValue& FrameFields::reset(FrameKey k) {
  auto& slot = slot_[static_cast<std::size_t>(k)];
  if (slot == 0) {
    values_.emplace_back();
    slot = static_cast<std::uint8_t>(values_.size());
    return values_.back();
  }
  FrameValue& v = values_[slot - 1];
  v = FrameValue{};
  return v;
}

boost::system::result<FrameFields, FrameError> FrameFields::parse(std::string_view text) {
  FrameFields fields;
  json::basic_parser<FrameHandler> parser(json_parse_options(), fields);
  json::error_code ec;
  // One JSON value per frame (PROTOCOL.md 3): the parser stops after it,
  // and anything but whitespace left over makes the frame invalid.
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (ec == json::error::too_deep) return FrameError::too_deep;
  if (ec || used != text.size()) return FrameError::not_json;
  if (parser.handler().not_object()) return FrameError::not_object;
  const FrameValue& type = fields[FrameKey::type];
  if (!type.present()) return FrameError::missing_type;
  if (type.kind != FrameValue::Kind::string) return FrameError::type_not_string;
  return fields;
}

}  // namespace herald::protocol
