#pragma once
// One WebSocket connection's transport: the Beast stream, the read loop, a
// single-writer send queue bounded in bytes, and the close handshake. Knows
// frames and close codes, nothing about users or inboxes: what a frame means
// is the business of the class that derives from it (gateway::Connection),
// through the hooks below. Base and derived class are one object, one
// allocation per connection.
//
// Parking: a connection silent both ways for WsLimits::park_after drops its
// Beast stream (about 2.5 KB) and waits for readability on the bare socket;
// a frame from the client, or anything to send, rebuilds the stream. Idle
// connections, the most numerous kind, then hold a few hundred bytes here.
// After the opening and after a wake for a heartbeat-like exchange, it
// parks again within about park_after/4 (see arm_park_timer()).
//
// Lives on one IoWorker; every method must be called on that worker's thread.
#include <cstdint>
#include <array>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/container/devector.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "core/close_reason.hpp"
#include "timers/timing_wheel.hpp"
#include "transport/io_worker.hpp"
#include "transport/parkable_socket.hpp"

namespace herald::transport {

enum class SendResult { queued, queue_full, closed };

// Shared by every session of a server: built once, outlives them all.
struct WsLimits {
  std::size_t max_message_bytes = 65536;
  std::size_t max_send_queue_bytes = 1048576;
  std::chrono::milliseconds close_timeout{3000};  // peer gets this long to answer our close
  std::chrono::milliseconds handshake_timeout{10000};  // the 101 answer must be written by then
  std::chrono::milliseconds park_after{2000};  // silence both ways before parking; 0: never park
};

struct WsCounters;  // metrics hooks, see ws_counters.hpp

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  // limits must outlive the session (one object serves every session).
  WsSession(IoWorker& worker, const WsLimits& limits, WsCounters* counters);
  virtual ~WsSession();

  // Takes the socket and completes the upgrade for its already-read request
  // (offering herald.v1 when the client asked for it), then starts reading.
  void accept(TcpSocket socket, Request request);

  // Queues a text frame. queue_full means the client is too slow: the caller
  // closes with 4009. The buffer may be shared by many sessions.
  SendResult send(std::shared_ptr<const std::string> frame);
  SendResult send(std::string frame) {
    return send(std::make_shared<const std::string>(std::move(frame)));
  }
  // Whether a frame of this size may be queued now without going over
  // max_send_queue_bytes (an empty queue takes any frame). When not, the
  // session calls on_send_room() once the queue has drained to half the
  // limit: the derived connection then sends what it held back. This is how
  // a backlog larger than the queue, or a message larger than it, is sent to
  // a client that reads: in steps, not as a 4009.
  bool has_send_room(std::size_t frame_bytes);
  // A WebSocket ping control frame (liveness probe on silent connections):
  // sent now, or right after the frame being written.
  void ping();
  // Starts the close handshake with this code. flush=true sends what is
  // queued first (drain); otherwise the queue is dropped.
  void close(CloseReason reason, std::string text = {}, bool flush = false);

  // How long the frame (or ping) being written has been waiting for the
  // socket; zero when nothing is being written. A client that stopped
  // reading holds a write here for good once the kernel's buffers are full.
  std::chrono::milliseconds write_stalled_for() const;

  bool closing() const { return closing_; }
  bool parked() const { return parked_; }
  IoWorker& worker() { return worker_; }

 protected:
  // What the derived connection implements; called on the owner thread.
  // The upgrade completed; the session is ready to send.
  virtual void on_open() = 0;
  // One complete text message.
  virtual void on_text(std::string_view text) = 0;
  // Any frame from the client arrived (data or control): liveness.
  virtual void on_activity() = 0;
  // A pong control frame arrived (answer to ping()).
  virtual void on_pong() = 0;
  // A ping or pong control frame arrived. Called inside Beast's read
  // operation: a close it decides on must be posted, not started here.
  virtual void on_control_frame() = 0;
  // Exactly once, when the connection is gone (or the upgrade failed).
  virtual void on_closed(CloseReason reason) = 0;
  // The deadline of arm_owner_timer() has come.
  virtual void on_owner_timer() = 0;
  // The send queue has room again after has_send_room() said no.
  virtual void on_send_room() {}

  // The derived connection's own deadline (liveness checks, token expiry)
  // rides on the session's one wheel timer, so a connection costs one timer
  // node in all: on_owner_timer() runs once `after` has passed. Arming again
  // moves the deadline; it is dropped when the session finishes. `after` is
  // capped at 12 days (the callback then simply comes early).
  void arm_owner_timer(std::chrono::milliseconds after);

 private:
  using Stream = boost::beast::websocket::stream<ParkableSocket, /*deflateSupported=*/false>;
  // Frames waiting to be written, bounded by WsLimits::max_send_queue_bytes.
  struct SendQueue {
    // A devector allocates nothing while empty (std::deque keeps 576 bytes).
    boost::container::devector<std::shared_ptr<const std::string>> frames;
    std::size_t bytes = 0;
  };
  // What a parked connection gives back: the Beast stream, the chunk an idle
  // read waits in, the partial message and the send queue (a connection
  // parks only with neither). Client frames (acks, pings) fit the chunk; a
  // longer message collects in `message`.
  struct LiveStream : Stream {
    using Stream::Stream;
    std::array<char, 128> read_chunk;
    std::string message;  // empty (and holding no memory) between messages
    SendQueue sends;
    std::uint32_t write_started = 0;  // wheel ms (cut to 32 bits) of the write or ping in flight
  };
  // The session's own deadline, by phase: the handshake deadline until open,
  // then the park check, then the close deadline once closing. It shares
  // one wheel timer with the owner's deadline (arm_owner_timer()).
  enum class TimerFor : std::uint8_t { none, handshake, park, close };
  static constexpr std::uint8_t kQuickParkChecks = 2;

  std::size_t queued_bytes() const { return ws_ ? ws_->sends.bytes : 0; }
  void configure_stream();
  void on_accept(boost::system::error_code ec);
  void arm_timer(TimerFor what, std::chrono::milliseconds after);
  void cancel_timer();  // the session's deadline; the owner's stays
  void schedule_timer();
  void on_timer();
  void run_session_timer(TimerFor what);
  void arm_park_timer(bool quick = false);
  std::chrono::milliseconds quick_park_after() const;
  void on_park_timer();
  void park();
  void park_aborted();
  void wait_readable();
  // quick: see arm_park_timer()
  void unpark(bool cancel_wait, bool quick);
  bool hydrate();
  void resume_writes();
  void set_parked(bool parked);
  void do_read();
  void on_read_some(boost::system::error_code ec, const char* chunk, std::size_t bytes);
  void on_read_error(boost::system::error_code ec);
  void on_message(std::string_view text);
  void release_queue();
  void do_write();
  void on_write(boost::system::error_code ec);
  void do_ping();
  void do_close();
  void on_close_done(boost::system::error_code ec);
  void fail(boost::system::error_code ec, const char* where);
  void finish(CloseReason reason);

  // Every parked connection holds what is below, so it is kept small: what
  // only a live or closing connection needs sits in ws_ or close_text_.
  IoWorker& worker_;
  SocketSlot slot_;
  std::unique_ptr<LiveStream> ws_;  // null while parked
  const WsLimits& limits_;
  WsCounters* counters_;

  // Flags as bits: only the owner thread touches them.
  bool writing_ : 1 = false;
  bool pinging_ : 1 = false;
  bool ping_wanted_ : 1 = false;  // ping() while writing: sent when the write completes
  bool room_wanted_ : 1 = false;  // has_send_room() said no: on_send_room() when it drains

  bool open_ : 1 = false;
  bool parking_ : 1 = false;         // the read was cancelled to park; sends wait for the outcome
  bool parked_ : 1 = false;          // no Beast stream; a readability wait is pending
  bool io_since_check_ : 1 = false;  // a frame went either way since the park timer last looked
  bool closing_ : 1 = false;         // close requested (by us or the peer)
  bool close_sent_ : 1 = false;      // async_close started
  bool finished_ : 1 = false;        // on_closed delivered
  bool owner_timer_ : 1 = false;     // owner_due_ is armed
  std::uint8_t quick_park_checks_ : 2 = 0;  // quick park checks left, see arm_park_timer()
  std::uint8_t park_gen_ = 0;        // tells a cancelled readability wait from the current one (wraps)
  TimerFor timer_for_ = TimerFor::none;  // what session_due_ is for (none: unarmed)
  CloseReason close_reason_ = CloseReason::normal;
  // Deadlines as steady-clock milliseconds cut to 32 bits: each is at most
  // 12 days ahead, so a wrap-around comparison orders them exactly.
  std::uint32_t session_due_ = 0;
  std::uint32_t owner_due_ = 0;
  timers::TimerId timer_;  // at the earlier armed deadline
  std::unique_ptr<std::string> close_text_;  // null when the close has no text
};

}  // namespace herald::transport
