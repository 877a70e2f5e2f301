#pragma once
// The JSON text of each publish's `data` with numbers exactly as the
// publisher wrote them (PROTOCOL.md 10: integers keep their exact value).
// Boost.JSON's value holds numbers as 64-bit integers or doubles, so an
// integer beyond 64 bits would come back as a double; this second pass runs
// Boost.JSON's own SAX parser over the body and re-emits `data` keeping
// each number's digits. Strings are re-escaped (same value); whitespace is
// dropped.
#include <map>
#include <string>
#include <string_view>

namespace herald::api {

// For a single publish (batch=false): {0: text of the top-level "data"}.
// For a batch: {i: text of messages[i].data} for every item that has one.
// Empty on a parse error (the caller's json::parse reports that).
std::map<std::size_t, std::string> data_texts(std::string_view body, bool batch);

}  // namespace herald::api
