// The parts of a WebSocket upgrade request Herald reads: the input is the
// target, the Authorization value and the Cookie value, separated by '\n'
// (a missing part is an absent header). A parameter that passed is valid.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_check.hpp"
#include "protocol/connect_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace herald::protocol;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  auto next = [&rest]() -> std::optional<std::string_view> {
    if (rest.data() == nullptr) return std::nullopt;
    const auto nl = rest.find('\n');
    std::string_view part = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    return part;
  };
  const auto target = next().value_or("");
  const auto authorization = next();
  const auto cookie = next();
  const auto r = parse_connect_request(target, authorization, cookie);
  if (!r.path_ok) {
    FUZZ_CHECK(!r.token && !r.device && !r.last_seq && !r.epoch && !r.param_error);
  } else if (!r.param_error) {
    FUZZ_CHECK(!r.device || valid_device_id(*r.device));
    FUZZ_CHECK(!r.epoch || r.epoch->size() <= kMaxEpochBytes);
  }
  return 0;
}
