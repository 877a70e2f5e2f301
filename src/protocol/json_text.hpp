#pragma once
// JSON values as text with every number exactly as it was written
// (PROTOCOL.md 10: integers keep their exact value, `data` is delivered
// unchanged). Boost.JSON's value holds numbers as 64-bit integers or
// doubles, so 12345678901234567890123 would come back as a double and 1e400
// as infinity, which it serializes as the non-JSON `Infinity`. These run
// Boost.JSON's own SAX parser over the document and re-emit the wanted
// values keeping each number's digits. Strings are re-escaped (same value);
// whitespace is dropped.
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace herald::protocol {

// The top-level member `key` of an object document (a publish's `data`, a
// msg frame's `data`, a ping's `id`); nullopt when absent or on a parse error.
std::optional<std::string> member_text(std::string_view document, std::string_view key);

// For a batch publish body: {i: text of messages[i].data} for every item
// that has one. Empty on a parse error.
std::map<std::size_t, std::string> batch_data_texts(std::string_view body);

}  // namespace herald::protocol
