#pragma once
// `herald tail`: follow one device's messages from a running Herald, one JSON line
// per message on stdout, state changes on stderr.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace herald::cli {

struct TailOptions {
  std::string url;                        // ws://HOST:PORT/v1/ws
  std::string token;                      // JWT, sent as Authorization: Bearer
  std::string device;                     // empty: the server decides (JWT dev, else "default")
  std::optional<std::uint64_t> last_seq;  // resume position
  std::string epoch;                      // the epoch last_seq belongs to
  bool raw = false;                       // print every text frame as received instead
  bool no_ack = false;                    // withhold acks (to watch redelivery)
  std::size_t count = 0;                  // exit after this many messages; 0: until a signal
};

// Runs until SIGINT/SIGTERM, `count` messages, or a close that forbids reconnecting
// (4010, 4011). Returns 0; 2 when the URL is unusable.
int run_tail(const TailOptions& opts);

}  // namespace herald::cli
