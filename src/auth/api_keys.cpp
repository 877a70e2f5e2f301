#include "auth/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace herald::auth {
namespace {

// Fetched once: EVP_sha256() makes EVP_Digest look the algorithm up in the
// provider on every call, which cost more than the hash of a short key (a
// check per publish request).
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &digest_len, sha256_md(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return std::string(reinterpret_cast<const char*>(digest), digest_len);
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

ApiKeys::ApiKeys(std::vector<std::string> keys) {
  keys_.reserve(keys.size());
  for (const std::string& key : keys) {
    if (!key.empty()) keys_.push_back(sha256(key));
  }
}

bool ApiKeys::check_authorization(std::string_view authorization_header) const {
  constexpr std::string_view kScheme = "bearer";
  const std::string_view value = trim(authorization_header);
  if (value.size() <= kScheme.size() || !iequals_ascii(value.substr(0, kScheme.size()), kScheme) ||
      !is_space(value[kScheme.size()])) {
    return false;
  }
  return check_key(trim(value.substr(kScheme.size())));
}

bool ApiKeys::check_key(std::string_view key) const {
  if (key.empty()) return false;
  const std::string candidate = sha256(key);
  bool found = false;
  for (const std::string& digest : keys_) {
    // No early exit: the time taken does not say which key matched.
    found |= CRYPTO_memcmp(candidate.data(), digest.data(), digest.size()) == 0;
  }
  return found;
}

std::size_t ApiKeys::size() const { return keys_.size(); }

}  // namespace herald::auth
