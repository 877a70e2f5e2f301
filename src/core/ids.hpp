#pragma once
// Random identifiers: connection ids, generated message ids, trace ids, epochs.
#include <string>

namespace herald {

// n random bytes as 2n lowercase hex digits, from a per-thread CSPRNG-seeded engine.
std::string random_hex(std::size_t bytes);

inline std::string new_trace_id() { return random_hex(16); }

}  // namespace herald
