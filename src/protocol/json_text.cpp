#include "protocol/json_text.hpp"

#include <vector>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include "protocol/json_limits.hpp"

namespace herald::protocol {
namespace json = boost::json;

namespace {

// SAX handler: tracks where it is in the document and copies the values at
// the wanted positions to text: the top-level member `key`, or (batch) the
// `data` of every element of the top-level `messages` array.
class DataTextHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  DataTextHandler(bool batch, std::string_view key) : batch_(batch), key_wanted_(key) {}
  std::map<std::size_t, std::string> take() { return std::move(found_); }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code&) {
    begin_value();
    emit("{");
    push(true);
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    pop();
    emit("}");
    end_value();
    return true;
  }
  bool on_array_begin(json::error_code&) {
    begin_value();
    emit("[");
    push(false);
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    pop();
    emit("]");
    end_value();
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    Frame& f = stack_.back();
    f.key = std::move(key_);
    key_.clear();
    if (capturing()) {
      if (!f.first) out_ += ',';
      out_ += json::serialize(json::string_view(f.key));
      out_ += ':';
    }
    f.first = false;
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    if (capturing() || at_data()) text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    begin_value();
    if (capturing()) {
      text_.append(s.data(), s.size());
      out_ += json::serialize(json::string_view(text_));
    }
    text_.clear();
    end_value();
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t, json::string_view s, json::error_code&) { return number(s); }
  bool on_uint64(std::uint64_t, json::string_view s, json::error_code&) { return number(s); }
  bool on_double(double, json::string_view s, json::error_code&) { return number(s); }
  bool on_bool(bool b, json::error_code&) { return scalar(b ? "true" : "false"); }
  bool on_null(json::error_code&) { return scalar("null"); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool is_object;
    bool first = true;
    std::string key;         // objects: the key of the value being read
    std::size_t count = 0;   // arrays: elements begun so far
    std::size_t item = 0;    // batch items: position in "messages"
  };

  bool capturing() const { return capture_depth_ != 0; }

  // Is the value that begins now a `data` we want?
  bool at_data() const {
    if (capturing()) return false;
    if (!batch_) return stack_.size() == 1 && stack_[0].is_object && stack_[0].key == key_wanted_;
    return stack_.size() == 3 && stack_[0].key == "messages" && !stack_[1].is_object &&
           stack_[2].is_object && stack_[2].key == "data";
  }

  void begin_value() {
    if (!stack_.empty() && !stack_.back().is_object) {
      Frame& arr = stack_.back();
      if (capturing() && !arr.first) out_ += ',';
      arr.first = false;
      pending_item_ = arr.count++;
    }
    if (at_data()) {
      capture_depth_ = stack_.size();
      capture_item_ = batch_ ? stack_[2].item : 0;
      out_.clear();
    }
  }

  void end_value() {
    if (capturing() && stack_.size() == capture_depth_) {
      found_[capture_item_] = std::move(out_);
      out_.clear();
      capture_depth_ = 0;
    }
  }

  void push(bool is_object) {
    Frame f{is_object};
    f.item = pending_item_;
    stack_.push_back(std::move(f));
  }
  void pop() { stack_.pop_back(); }

  void emit(std::string_view s) {
    if (capturing()) out_ += s;
  }

  bool number(json::string_view last) {
    number_.append(last.data(), last.size());
    begin_value();
    emit(number_);
    number_.clear();
    end_value();
    return true;
  }

  bool scalar(std::string_view text) {
    begin_value();
    emit(text);
    end_value();
    return true;
  }

  const bool batch_;
  const std::string_view key_wanted_;
  std::vector<Frame> stack_;
  std::string key_;
  std::string text_;
  std::string number_;
  std::string out_;
  std::size_t capture_depth_ = 0;  // stack size where the capture began; 0: none
  std::size_t capture_item_ = 0;
  std::size_t pending_item_ = 0;
  std::map<std::size_t, std::string> found_;
};

std::map<std::size_t, std::string> texts(std::string_view document, bool batch, std::string_view key) {
  json::basic_parser<DataTextHandler> parser(json_parse_options(), batch, key);
  json::error_code ec;
  const std::size_t used = parser.write_some(false, document.data(), document.size(), ec);
  if (ec || used != document.size()) return {};
  return parser.handler().take();
}

}  // namespace

std::optional<std::string> member_text(std::string_view document, std::string_view key) {
  auto found = texts(document, false, key);
  if (found.empty()) return std::nullopt;
  return std::move(found.begin()->second);
}

std::map<std::size_t, std::string> batch_data_texts(std::string_view body) {
  return texts(body, true, "data");
}

}  // namespace herald::protocol
