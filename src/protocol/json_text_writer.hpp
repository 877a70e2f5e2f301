#pragma once
// Compact JSON text from a SAX parser's events, for values that must reach
// the other side as they were written (json_text.hpp): numbers keep their
// source digits, strings are escaped as Boost.JSON's serializer escapes
// them. One string grows for the whole value: no allocation per member.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::protocol {

class JsonTextWriter {
 public:
  void clear();
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  void key(std::string_view k);
  void string(std::string_view s);
  void number(std::string_view digits);
  void literal(std::string_view text);  // true, false, null

  const std::string& text() const { return out_; }
  std::string take();

 private:
  void begin_value();
  void open(char c);
  void close(char c);
  void quoted(std::string_view s);

  std::string out_;
  std::vector<std::uint8_t> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;           // a member's value comes next: no comma
};

}  // namespace herald::protocol
