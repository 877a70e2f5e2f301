#pragma once
// Maps keyed by std::string, looked up by std::string_view without building a
// std::string first (C++20 heterogeneous lookup). A user id as long as a UUID
// is past the small-string buffer, so each such lookup used to allocate.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <class Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

}  // namespace herald
