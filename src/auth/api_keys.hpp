#pragma once
// Publisher/admin API keys for the HTTP API (PROTOCOL.md 7, 8).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace herald::auth {

// The set of configured API keys (HERALD_API_KEYS, PROTOCOL.md 9) and the
// check of an `Authorization: Bearer <api key>` header against it. Each
// comparison takes the same time whatever the candidate: keys are compared
// as SHA-256 digests with CRYPTO_memcmp, and every configured key is tried,
// so neither a key's content nor its length leaks through timing.
// Immutable after construction: any thread may call it concurrently. It does
// not know which routes need a key (PROTOCOL.md 10: /v1/ routes do).
class ApiKeys {
 public:
  // Empty strings (e.g. from "a,,b") are dropped: an empty key would match
  // a bare "Bearer ".
  explicit ApiKeys(std::vector<std::string> keys);

  // authorization_header is the full header value, e.g. "Bearer abc"; the
  // scheme is case-insensitive (RFC 9110 11.1). True if it names a configured key.
  bool check_authorization(std::string_view authorization_header) const;
  bool check_key(std::string_view key) const;
  // Number of usable (non-empty) keys.
  std::size_t size() const;

 private:
  std::vector<std::string> keys_;  // SHA-256 digests of the configured keys
};

}  // namespace herald::auth
