#pragma once
// The C++ client of Herald's WebSocket protocol (PROTOCOL.md 2-6), used by the
// CLI (`herald tail`), the bench tool and the end-to-end tests.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "herald/reconnect_backoff.hpp"
#include "protocol/frames.hpp"

namespace herald::sdk {

// One message as handed to the application (a `msg` frame, PROTOCOL.md 3).
struct Message {
  std::uint64_t seq = 0;       // identity of the message within the user's inbox epoch
  std::string id;              // publisher's id (idempotency key)
  std::string event;           // empty when the publisher gave none
  std::string data_json;       // the publisher's JSON value, as JSON text
  std::string trace_id;        // W3C trace id carried from the publish
  std::int64_t ts = 0;         // when the server accepted the message, unix ms
  std::uint32_t attempt = 1;   // > 1: a redelivery on the same connection
};

enum class ClientState { connecting, open, waiting_to_reconnect, closed };
std::string_view to_string(ClientState s);

// Why the last connection (attempt) ended, as given to on_state.
struct CloseInfo {
  int code = 0;        // WebSocket close code from the server; the HTTP status of a refused
                       // upgrade; 0 when the socket just died (or the attempt timed out)
  std::string reason;  // close reason text, refusal body, or a description of the failure
};

struct ClientOptions {
  std::string url;                              // "ws://127.0.0.1:8080/v1/ws" (ws:// or http://)
  std::function<std::string()> token_provider;  // called before every connect; sent as Authorization: Bearer
  std::string device;                           // sent as ?device= (empty: omitted)
  std::optional<std::uint64_t> last_seq;        // initial resume position (sent with epoch)
  std::string epoch;                            // the epoch last_seq belongs to
  bool auto_reconnect = true;
  std::chrono::milliseconds backoff_initial{200};  // a quick first retry after a blip
  std::chrono::milliseconds backoff_max{10000};    // bounds the wait once the server stays away
  // A connection that lasted this long after its welcome starts the backoff
  // again; shorter ones (a server closing right after welcome, a handler
  // throwing on the same message every time) keep it growing.
  std::chrono::milliseconds backoff_reset_after{10000};
  std::chrono::milliseconds heartbeat{0};          // 0: use welcome.heartbeat_ms
  bool auto_ack = true;                            // ack each message after on_message returns; a burst as one `ack upto`
  // auto_ack paces its frames: at most one per ack_interval (a lone message is acked at
  // once), and at once whenever ack_batch messages wait. Keep ack_batch below the
  // server's max_inflight (64 by default), or a burst waits for the interval each window.
  std::chrono::microseconds ack_interval{1000};
  std::size_t ack_batch = 32;
  std::chrono::milliseconds connect_timeout{5000};  // resolve + connect + upgrade + welcome
  // stop(): how long the queued frames and the close handshake may take
  // before the socket is cut (a server that stopped reading never answers).
  std::chrono::milliseconds close_timeout{2000};
  std::size_t max_message_bytes = 16u << 20;        // larger frames from the server end the connection
  std::optional<std::uint64_t> jitter_seed;         // backoff randomness; unset: from std::random_device
  // Source address to bind before connecting ("127.0.0.2"); empty: the kernel picks. A
  // load generator spreads its connections over several loopback addresses so that one
  // address's ephemeral ports do not run out.
  std::string local_address;
};

// One logical client of one device: connects, resumes from the last processed seq,
// hands each message to the application once (dedup by seq, PROTOCOL.md 4.5), acks,
// sends heartbeats, and reconnects with backoff until stop() or a close code that
// forbids it (4010, 4011).
//
// Owns at most one connection at a time (a Beast WebSocket stream, its single-writer
// write queue and its heartbeat timer) and its reconnect timer. Everything runs on a
// strand of the executor given to create(), so many clients can share one io_context
// (also one run by several threads). Public methods may be called from any thread;
// the on_* setters must be called before start(). Handlers run on that strand, one at
// a time, in order, and must not block. A handler that throws drops the connection (the
// message it was handling is neither marked processed nor acked, so it comes again).
// Pending operations keep the client alive until it is closed: call stop().
// It knows nothing of what the messages mean and stores nothing on disk: an
// application that persists last_seq()/epoch() passes them back in ClientOptions.
class Client : public std::enable_shared_from_this<Client> {
 public:
  // Throws std::invalid_argument when opts.url is not a ws:// or http:// URL.
  static std::shared_ptr<Client> create(boost::asio::io_context::executor_type ex, ClientOptions opts);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Every new message, exactly once per Client object: a msg whose seq is <= the last
  // processed seq is a duplicate, acked again (with auto_ack) and not handed out.
  void on_message(std::function<void(const Message&)> h);
  // Every welcome, before the state becomes open.
  void on_welcome(std::function<void(const protocol::WelcomeFrame&)> h);
  // Every state change; info tells why the previous connection ended.
  void on_state(std::function<void(ClientState, const CloseInfo&)> h);
  void on_error_frame(std::function<void(const protocol::ErrorFrame&)> h);
  // Every text frame from the server, before it is decoded and handled.
  void on_raw_frame(std::function<void(std::string_view)> h);

  void start();  // connects; from closed only, otherwise ignored
  // Flushes queued frames, closes with 1000, does not reconnect. Frames that arrive
  // meanwhile are not handed out (nor acked); on_state(closed) is the last call.
  void stop();

  // Frames for the current connection; dropped when there is none (acks only mean
  // something on the connection that sent the message, PROTOCOL.md 10).
  void ack(std::uint64_t seq);
  void ack_upto(std::uint64_t upto);
  void send_text(std::string text);
  void refresh(std::string token);

  // Safe from any thread.
  std::uint64_t last_seq() const;  // last processed seq; 0 before any
  std::string epoch() const;       // epoch of the last welcome (or the one given in options)
  ClientState state() const;
  std::optional<std::chrono::microseconds> last_rtt() const;  // from the latest pong
  std::uint64_t reconnects() const;   // welcomes received after the first one
  std::uint64_t duplicates() const;   // msg frames dropped as already processed

 private:
  struct Connection;
  // A concrete executor, not any_io_executor: the type-erased one cost every
  // completion handler a shared_ptr copy and a virtual dispatch.
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  using Timer = boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                                  boost::asio::wait_traits<std::chrono::steady_clock>, Strand>;

  Client(boost::asio::io_context::executor_type ex, ClientOptions opts);

  void do_start();
  void do_stop();
  void do_connect();
  void on_resolve(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec,
                  const boost::asio::ip::tcp::resolver::results_type& results);
  void connect_from(const std::shared_ptr<Connection>& conn, const boost::asio::ip::tcp::endpoint& remote);
  void on_connect(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void on_handshake(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void on_connect_deadline(const std::shared_ptr<Connection>& conn,
                           const boost::system::error_code& ec);
  void do_read(const std::shared_ptr<Connection>& conn);
  void on_read(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void handle_frame(const std::shared_ptr<Connection>& conn, std::string_view text);
  void handle_welcome(const std::shared_ptr<Connection>& conn, const protocol::WelcomeFrame& w);
  void handle_msg(const std::shared_ptr<Connection>& conn, const protocol::MsgFrame& m);
  void handle_pong(const std::shared_ptr<Connection>& conn, const protocol::PongFrame& p);
  void arm_heartbeat(const std::shared_ptr<Connection>& conn);
  void on_heartbeat(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void on_close_deadline(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void enqueue(const std::shared_ptr<Connection>& conn, std::string frame);
  void queue_auto_ack(const std::shared_ptr<Connection>& conn, std::uint64_t seq);
  bool ack_due(const Connection& conn) const;
  void flush_acks(const std::shared_ptr<Connection>& conn);
  void arm_ack_timer(const std::shared_ptr<Connection>& conn);
  void on_ack_timer(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void do_write(const std::shared_ptr<Connection>& conn);
  void on_write(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void do_close(const std::shared_ptr<Connection>& conn);
  void on_close(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec);
  void fail(const std::shared_ptr<Connection>& conn, const boost::system::error_code& ec,
            std::string_view where);
  void end_connection(std::shared_ptr<Connection> conn, CloseInfo info,
                      std::chrono::milliseconds min_delay = std::chrono::milliseconds(0));  // by value: callers pass conn_
  void on_reconnect_timer(const boost::system::error_code& ec);
  void set_state(ClientState s, const CloseInfo& info);
  void set_processed(std::optional<std::uint64_t> seq);

  Strand strand_;
  const ClientOptions opts_;
  std::function<void(const Message&)> on_message_;
  std::function<void(const protocol::WelcomeFrame&)> on_welcome_;
  std::function<void(ClientState, const CloseInfo&)> on_state_;
  std::function<void(const protocol::ErrorFrame&)> on_error_frame_;
  std::function<void(std::string_view)> on_raw_frame_;

  // Strand only.
  std::shared_ptr<Connection> conn_;       // the connection (attempt) in progress; null between
  Timer reconnect_timer_;
  ReconnectBackoff backoff_;
  bool stopping_ = false;                  // stop() asked; the next end is final
  bool start_after_stop_ = false;          // start() came while a stop was under way
  // Since a 1001 close, until the next welcome: the retry_after bound, the
  // longest reconnect wait (see end_connection).
  std::optional<std::chrono::milliseconds> restart_bound_;
  std::optional<std::uint64_t> processed_;  // last processed seq: the dedup mark and resume position
  std::string resume_epoch_;               // the epoch processed_ belongs to
  std::int64_t next_ping_id_ = 0;
  std::uint64_t welcomes_ = 0;
  const std::string attempt_session_;     // random, this object's; see do_connect()
  std::uint64_t attempts_ = 0;            // connection attempts made

  // Mirrors for the getters, written on the strand.
  std::atomic<ClientState> state_{ClientState::closed};
  std::atomic<std::uint64_t> last_seq_{0};
  std::atomic<std::int64_t> last_rtt_us_{-1};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  mutable std::mutex epoch_mutex_;  // guards epoch_ only; never held while calling out
  std::string epoch_;
};

}  // namespace herald::sdk
