#include "core/ids.hpp"

#include <openssl/rand.h>

#include <random>

namespace herald {

std::string random_hex(std::size_t bytes) {
  // Seeded once per thread from OpenSSL; ids need uniqueness, not secrecy.
  thread_local std::mt19937_64 engine = [] {
    std::uint64_t seed = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1) {
      seed = std::random_device{}();
    }
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    if (i % 8 == 0) word = engine();
    const auto b = static_cast<unsigned>(word & 0xff);
    word >>= 8;
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace herald
