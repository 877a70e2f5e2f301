#pragma once
// How many bytes a member's value took in a JSON text as received
// (PROTOCOL.md 10: the 413 size of a publish's `data` is "the byte length
// of its JSON text as received", whitespace and escapes included).
// Boost.JSON validates and parses, but reports no offsets. So these walk
// the members of an object whose text Boost.JSON has already accepted:
// each key and each value is consumed by a Boost.JSON parser of its own,
// which stops after one value and says how far it read; the walk itself
// only steps over whitespace, ':' and ','.
#include <cstddef>
#include <map>
#include <optional>
#include <string_view>

namespace herald::protocol {

// The received length of the top-level member `key` of an object
// document; nullopt when absent or the text is not a JSON object. With a
// key given twice, the last.
std::optional<std::size_t> received_member_size(std::string_view document, std::string_view key);

// For a batch publish body: {i: received length of messages[i].data} for
// every element that is an object with one.
std::map<std::size_t, std::size_t> received_batch_data_sizes(std::string_view body);

}  // namespace herald::protocol
