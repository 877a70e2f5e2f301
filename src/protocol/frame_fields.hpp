#pragma once
// The top-level members of a frame (PROTOCOL.md 3), read in one pass of
// Boost.JSON's SAX parser: no DOM, no second parse for `data`. Only the
// members frames have are kept; the others are validated and skipped.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/container/small_vector.hpp>
#include <boost/system/result.hpp>

namespace herald::protocol {

enum class FrameError;

enum class FrameKey : std::uint8_t {
  type, seq, upto, id, event, data, ts, attempt, trace_id,
  conn_id, user, device, epoch, head_seq, resume_from, recovered, heartbeat_ms, idle_timeout_ms,
  max_inflight, server_time, code, message, exp, token,
  count_
};

struct FrameValue {
  enum class Kind : std::uint8_t { absent, string, int64, uint64, real, boolean, null, composite };
  Kind kind = Kind::absent;
  std::string str;        // Kind::string
  std::int64_t i64 = 0;   // Kind::int64
  std::uint64_t u64 = 0;  // Kind::uint64
  double real = 0;        // Kind::real
  bool boolean = false;   // Kind::boolean
  // The value as JSON text, as written (json_text.hpp): kept for `data`, `id`
  // and `ts`, which frames pass on unchanged.
  std::string text;

  bool present() const { return kind != Kind::absent; }
};

class FrameFields {
 public:
  static boost::system::result<FrameFields, FrameError> parse(std::string_view text);

  // An absent member reads as a value of Kind::absent (the non-const one
  // adds it so, for its strings to be moved out like the others).
  const FrameValue& operator[](FrameKey k) const;
  FrameValue& operator[](FrameKey k);
  // The member's value, cleared; added when absent.
  FrameValue& reset(FrameKey k);

 private:
  // Only the members present take room: a frame has about ten, of 24 known.
  std::array<std::uint8_t, static_cast<std::size_t>(FrameKey::count_)> slot_{};  // 0: absent, else index + 1
  boost::container::small_vector<FrameValue, 12> values_;
};

}  // namespace herald::protocol
