#pragma once
// The dashboard and demo pages (web/) and the JavaScript SDK the demo runs
// (clients/js/src), built into the binary by cmake/embed_web.cmake: nothing
// to install next to it, nothing fetched at run time. The server registers
// them as static routes; demo-only ones only when `demo` is on.
#include <span>
#include <string_view>

namespace herald::web {

struct WebAsset {
  std::string_view path;          // exact URL path, e.g. /dashboard/dashboard.js
  std::string_view content_type;  // with charset for text
  std::string_view body;          // the file's bytes, static storage
  bool demo_only;                 // served only when config `demo` is on
};

// Every asset, in the order of src/web/CMakeLists.txt.
std::span<const WebAsset> web_assets();

}  // namespace herald::web
