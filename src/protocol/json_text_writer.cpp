#include "protocol/json_text_writer.hpp"

#include <algorithm>

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

namespace herald::protocol {

void JsonTextWriter::clear() {
  out_.clear();
  first_.clear();
  after_key_ = false;
}

std::string JsonTextWriter::take() {
  std::string out = std::move(out_);
  clear();
  return out;
}

void JsonTextWriter::begin_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (first_.empty()) return;
  if (!first_.back()) out_ += ',';
  first_.back() = 0;
}

void JsonTextWriter::open(char c) {
  begin_value();
  out_ += c;
  first_.push_back(1);
}

void JsonTextWriter::close(char c) {
  out_ += c;
  if (!first_.empty()) first_.pop_back();
}

void JsonTextWriter::begin_object() { open('{'); }
void JsonTextWriter::end_object() { close('}'); }
void JsonTextWriter::begin_array() { open('['); }
void JsonTextWriter::end_array() { close(']'); }

void JsonTextWriter::key(std::string_view k) {
  begin_value();
  quoted(k);
  out_ += ':';
  after_key_ = true;
}

void JsonTextWriter::string(std::string_view s) {
  begin_value();
  quoted(s);
}

void JsonTextWriter::number(std::string_view digits) {
  begin_value();
  out_ += digits;
}

void JsonTextWriter::literal(std::string_view text) {
  begin_value();
  out_ += text;
}

// Most strings need no escape: those are copied between quotes; the rest go
// through Boost.JSON's serializer.
void JsonTextWriter::quoted(std::string_view s) {
  const bool plain = std::none_of(s.begin(), s.end(), [](char c) {
    return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
  if (plain) {
    out_ += '"';
    out_ += s;
    out_ += '"';
  } else {
    out_ += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
  }
}

}  // namespace herald::protocol
