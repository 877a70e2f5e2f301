#pragma once
// When an append counts as durable (PROTOCOL.md 7, 9: HERALD_SYNC): the
// moment a publish may be answered with 200.
#include <optional>
#include <string_view>

namespace herald::store {

enum class SyncMode {
  always,  // each group commit is fsynced before append returns
  batch,   // append returns once in the WAL (survives a process crash); a background
           // fsync follows within sync_batch (power loss loses at most that window)
  none,    // written to the OS, fsync left to it: survives a process crash, not power loss
};

constexpr std::string_view sync_mode_name(SyncMode m) {
  switch (m) {
    case SyncMode::always: return "always";
    case SyncMode::batch: return "batch";
    case SyncMode::none: return "none";
  }
  return "always";
}

constexpr std::optional<SyncMode> parse_sync_mode(std::string_view s) {
  if (s == "always") return SyncMode::always;
  if (s == "batch") return SyncMode::batch;
  if (s == "none") return SyncMode::none;
  return std::nullopt;
}

}  // namespace herald::store
