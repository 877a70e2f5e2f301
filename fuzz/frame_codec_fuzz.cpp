// Text frames from clients (and, for the SDK, from servers) through the codec:
// nothing may crash, and a decoded msg frame re-encodes to the same message,
// data's text included.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "protocol/frame_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace herald::protocol;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)decode_client_frame(text);
  auto server = decode_server_frame(text);
  if (server) {
    if (const auto* m = std::get_if<MsgFrame>(&*server)) {
      auto again = decode_server_frame(encode(*m));
      FUZZ_CHECK(again && std::holds_alternative<MsgFrame>(*again));
      const auto& m2 = std::get<MsgFrame>(*again);
      FUZZ_CHECK(m2.seq == m->seq && m2.id == m->id && m2.event == m->event && m2.attempt == m->attempt &&
                 m2.ts == m->ts && m2.trace_id == m->trace_id);
      // data's text, written compact by the decoder, comes back unchanged
      // (an absent data is sent as null).
      FUZZ_CHECK(m2.data_json == (m->data_json.empty() ? "null" : m->data_json));
    }
  }
  return 0;
}
