// Publish and batch bodies (POST /v1/publish[/batch]): the first byte picks
// the route and the size limit (a small one makes most bodies larger than
// it, so data is measured as received). Nothing may crash, every accepted
// message's data is JSON, and no accepted data was over the limit as sent.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/json.hpp>

#include "api/publish_request.hpp"
#include "core/text.hpp"
#include "protocol/json_spans.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace herald::api;
  if (size == 0) return 0;
  const bool batch = (data[0] & 1) != 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const PublishLimits limits{(data[0] & 2) != 0 ? 64u : 4096u, 16, 64};
  auto parsed = parse_publish_body(body, batch, limits, "", 1764000000000);
  if (const auto* items = std::get_if<ParsedItems>(&parsed)) {
    FUZZ_CHECK(batch || items->size() == 1);
    for (const auto& item : *items) {
      const auto* ok = std::get_if<PublishItem>(&item);
      if (ok == nullptr) continue;
      FUZZ_CHECK(!ok->messages.empty() && ok->messages.size() <= limits.max_users);
      for (const auto& m : ok->messages) {
        boost::json::error_code ec;
        (void)boost::json::parse(m.data_json, ec);
        FUZZ_CHECK(!ec);
        FUZZ_CHECK(m.data_json.size() <= limits.max_message_bytes);
        FUZZ_CHECK(herald::is_valid_user_id(m.user));
        FUZZ_CHECK(!m.id.empty());
      }
    }
    if (!batch && std::holds_alternative<PublishItem>((*items)[0])) {
      const auto received = herald::protocol::received_member_size(body, "data");
      FUZZ_CHECK(!received || *received <= limits.max_message_bytes);
    }
  }
  return 0;
}
