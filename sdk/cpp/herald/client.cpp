#include "herald/client.hpp"

#include <charconv>

#include <deque>
#include <stdexcept>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "herald/endpoint.hpp"
#include "protocol/frame_codec.hpp"

namespace herald::sdk {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

// Frames waiting for the socket. Acks are ~30 bytes, so this is a few MB; a server
// that lets this many pile up is not reading, and the connection is dropped.
constexpr std::size_t max_queued_frames = 1u << 16;
// Pings remembered for RTT; pongs come back at once, so only the latest matter.
constexpr std::size_t max_outstanding_pings = 16;

std::optional<milliseconds> retry_after_header(const websocket::response_type& res) {
  auto it = res.find(http::field::retry_after);
  if (it == res.end()) return std::nullopt;
  try {
    const long long seconds = std::stoll(std::string(it->value()));
    if (seconds >= 0) return milliseconds(seconds * 1000);
  } catch (const std::exception&) {
  }
  return std::nullopt;  // an HTTP date is not worth parsing here: backoff covers it
}

}  // namespace

std::string_view to_string(ClientState s) {
  switch (s) {
    case ClientState::connecting: return "connecting";
    case ClientState::open: return "open";
    case ClientState::waiting_to_reconnect: return "waiting_to_reconnect";
    case ClientState::closed: return "closed";
  }
  return "unknown";
}

// One connection attempt and, once upgraded, the live connection. Replaced, never
// reused: completions of an old one see it is no longer conn_ and do nothing.
struct Client::Connection {
  explicit Connection(const Strand& strand) : resolver(strand), ws(strand), timer(strand), ack_timer(strand) {}

  asio::ip::basic_resolver<tcp, Strand> resolver;
  // A plain socket under the websocket: beast::tcp_stream's own timeouts
  // are not used (`timer` below, the websocket's handshake timeout), and
  // its layer around each read and write cost 6 % of `herald bench
  // fanout`'s CPU per message (51.4 -> 48.4 us at 10,000/s).
  websocket::stream<asio::basic_stream_socket<tcp, Strand>> ws;
  websocket::response_type handshake_response;  // kept for a refusal's status and body
  beast::flat_buffer read_buffer;
  Endpoint endpoint;
  std::string token;
  std::deque<std::string> write_queue;  // front is being written while `writing`
  bool writing = false;
  // auto_ack not sent yet: the highest handled seq and how many messages it
  // covers, sent as one `ack upto` when due (see queue_auto_ack).
  std::optional<std::uint64_t> pending_ack_upto;
  std::size_t pending_acks = 0;
  SteadyClock::time_point last_ack_sent{};
  bool upgraded = false;         // frames may be written
  bool welcomed = false;
  SteadyClock::time_point welcomed_at{};
  bool close_requested = false;  // stop(): close 1000 once the queue is empty
  bool closing = false;          // async_close in flight
  // Before the welcome: the connect deadline. After: the heartbeat.
  Timer timer;
  Timer ack_timer;  // the ack interval's end, while acks wait for it
  bool ack_timer_armed = false;
  milliseconds heartbeat{0};
  SteadyClock::time_point last_received{};
  std::deque<std::pair<std::int64_t, SteadyClock::time_point>> pings;  // id, sent at
};

std::shared_ptr<Client> Client::create(asio::io_context::executor_type ex, ClientOptions opts) {
  if (auto ep = connect_endpoint(opts.url, opts.device, opts.last_seq, opts.epoch); !ep) {
    throw std::invalid_argument("herald client: bad url '" + opts.url + "': " + ep.error().message());
  }
  return std::shared_ptr<Client>(new Client(std::move(ex), std::move(opts)));
}

Client::Client(asio::io_context::executor_type ex, ClientOptions opts)
    : strand_(asio::make_strand(std::move(ex))),
      opts_(std::move(opts)),
      reconnect_timer_(strand_),
      backoff_(opts_.backoff_initial, opts_.backoff_max,
               opts_.jitter_seed.value_or(std::random_device{}())),
      processed_(opts_.last_seq),
      resume_epoch_(opts_.epoch),
      attempt_session_(random_hex(8)),
      last_seq_(opts_.last_seq.value_or(0)),
      epoch_(opts_.epoch) {}

Client::~Client() = default;

void Client::on_message(std::function<void(const Message&)> h) { on_message_ = std::move(h); }
void Client::on_welcome(std::function<void(const protocol::WelcomeFrame&)> h) { on_welcome_ = std::move(h); }
void Client::on_state(std::function<void(ClientState, const CloseInfo&)> h) { on_state_ = std::move(h); }
void Client::on_error_frame(std::function<void(const protocol::ErrorFrame&)> h) { on_error_frame_ = std::move(h); }
void Client::on_raw_frame(std::function<void(std::string_view)> h) { on_raw_frame_ = std::move(h); }

void Client::start() { asio::post(strand_, [self = shared_from_this()] { self->do_start(); }); }
void Client::stop() { asio::post(strand_, [self = shared_from_this()] { self->do_stop(); }); }

void Client::ack(std::uint64_t seq) {
  asio::post(strand_, [self = shared_from_this(), seq] { self->enqueue(self->conn_, protocol::encode_ack(seq)); });
}
void Client::ack_upto(std::uint64_t upto) {
  asio::post(strand_, [self = shared_from_this(), upto] { self->enqueue(self->conn_, protocol::encode_ack_upto(upto)); });
}
void Client::send_text(std::string text) {
  asio::post(strand_, [self = shared_from_this(), t = std::move(text)]() mutable { self->enqueue(self->conn_, std::move(t)); });
}
void Client::refresh(std::string token) {
  asio::post(strand_, [self = shared_from_this(), t = std::move(token)] { self->enqueue(self->conn_, protocol::encode_refresh(t)); });
}

std::uint64_t Client::last_seq() const { return last_seq_.load(); }
std::string Client::epoch() const {
  std::lock_guard lock(epoch_mutex_);
  return epoch_;
}
ClientState Client::state() const { return state_.load(); }
std::optional<std::chrono::microseconds> Client::last_rtt() const {
  const auto us = last_rtt_us_.load();
  if (us < 0) return std::nullopt;
  return std::chrono::microseconds(us);
}
std::uint64_t Client::reconnects() const { return reconnects_.load(); }
std::uint64_t Client::duplicates() const { return duplicates_.load(); }

// ---- lifecycle ----------------------------------------------------------------

void Client::do_start() {
  if (stopping_) {
    // The close of the stop() before is under way: connect once it ends.
    start_after_stop_ = true;
    return;
  }
  if (state_.load() != ClientState::closed) return;
  do_connect();
}

void Client::do_stop() {
  start_after_stop_ = false;
  if (state_.load() == ClientState::closed) return;
  stopping_ = true;
  reconnect_timer_.cancel();
  if (!conn_) {
    stopping_ = false;
    set_state(ClientState::closed, CloseInfo{1000, "stopped"});
  } else if (conn_->upgraded) {
    if (conn_->close_requested) return;
    conn_->close_requested = true;  // do_write sends what waits (acks too), then closes
    // Replaces the heartbeat (or connect deadline): a server that stopped
    // reading would hold the writes and the close handshake forever.
    conn_->timer.expires_after(opts_.close_timeout);
    conn_->timer.async_wait([self = shared_from_this(), conn = conn_](const error_code& ec) {
      self->on_close_deadline(conn, ec);
    });
    if (!conn_->writing && !conn_->closing) do_write(conn_);
  } else {
    end_connection(conn_, CloseInfo{0, "stopped while connecting"});
  }
}

void Client::do_connect() {
  auto conn = std::make_shared<Connection>(strand_);
  conn_ = conn;
  set_state(ClientState::connecting, CloseInfo{});
  if (conn_ != conn) return;  // the state handler stopped us
  try {
    conn->token = opts_.token_provider ? opts_.token_provider() : std::string();
  } catch (const std::exception& e) {
    end_connection(conn, CloseInfo{0, std::string("token provider failed: ") + e.what()});
    return;
  } catch (...) {
    // Whatever it threw must not escape into the application's io_context::run().
    end_connection(conn, CloseInfo{0, "token provider failed"});
    return;
  }
  // Resume from what this object processed, in the epoch that belongs to (PROTOCOL.md 2).
  // Numbered, so that the server never lets an attempt this object gave up
  // on replace a later one that is connected (docs/protocol.md "Stale attempts").
  const std::string attempt = attempt_session_ + "." + std::to_string(++attempts_);
  conn->endpoint = connect_endpoint(opts_.url, opts_.device, processed_, resume_epoch_, attempt).value();
  conn->timer.expires_after(opts_.connect_timeout);
  conn->timer.async_wait([self = shared_from_this(), conn](const error_code& ec) {
    self->on_connect_deadline(conn, ec);
  });
  conn->resolver.async_resolve(
      conn->endpoint.host, conn->endpoint.port,
      [self = shared_from_this(), conn](const error_code& ec, const asio::ip::basic_resolver<tcp, Strand>::results_type& results) {
        self->on_resolve(conn, ec, results);
      });
}

void Client::on_resolve(const std::shared_ptr<Connection>& conn, const error_code& ec,
                        const asio::ip::basic_resolver<tcp, Strand>::results_type& results) {
  if (conn != conn_) return;
  if (ec) return fail(conn, ec, "resolve");
  if (!opts_.local_address.empty()) return connect_from(conn, *results.begin());
  asio::async_connect(beast::get_lowest_layer(conn->ws), results,
                      [self = shared_from_this(), conn](const error_code& e, const tcp::endpoint&) {
                        self->on_connect(conn, e);
                      });
}

// With a source address only the first resolved endpoint is tried: a range connect
// closes the socket between attempts, and with it the binding.
void Client::connect_from(const std::shared_ptr<Connection>& conn, const tcp::endpoint& remote) {
  error_code ec;
  const auto local = asio::ip::make_address(opts_.local_address, ec);
  if (ec) return fail(conn, ec, "local address");
  auto& socket = beast::get_lowest_layer(conn->ws);
  if (socket.open(remote.protocol(), ec); ec) return fail(conn, ec, "open");
  if (socket.bind(tcp::endpoint(local, 0), ec); ec) return fail(conn, ec, "bind");
  socket.async_connect(remote, [self = shared_from_this(), conn](const error_code& e) { self->on_connect(conn, e); });
}

void Client::on_connect(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  if (conn != conn_) return;
  if (ec) return fail(conn, ec, "connect");
  beast::get_lowest_layer(conn->ws).set_option(tcp::no_delay(true));
  // The connect deadline covers the opening handshake; this bounds the closing one.
  conn->ws.set_option(websocket::stream_base::timeout{
      opts_.connect_timeout, websocket::stream_base::none(), false});
  conn->ws.set_option(websocket::stream_base::decorator(
      [token = conn->token](websocket::request_type& req) {
        req.set(http::field::user_agent, "herald-sdk-cpp");
        req.set(http::field::sec_websocket_protocol, "herald.v1");
        if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
      }));
  conn->ws.read_message_max(opts_.max_message_bytes);
  // Server pings count as signs of life for the heartbeat check. The stream lives in conn.
  conn->ws.control_callback([c = conn.get()](websocket::frame_type, std::string_view) {
    c->last_received = SteadyClock::now();
  });
  conn->ws.async_handshake(conn->handshake_response, conn->endpoint.host_header,
                           conn->endpoint.target,
                           [self = shared_from_this(), conn](const error_code& e) {
                             self->on_handshake(conn, e);
                           });
}

void Client::on_handshake(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  if (conn != conn_) return;
  if (ec) {
    if (ec == websocket::error::upgrade_declined) {
      const auto& res = conn->handshake_response;
      // Refused before the upgrade (PROTOCOL.md 2): 401, 429, 503... tried again with
      // backoff; the token provider decides what token the next attempt carries.
      return end_connection(conn, CloseInfo{static_cast<int>(res.result_int()), res.body()},
                            retry_after_header(res).value_or(milliseconds(0)));
    }
    return fail(conn, ec, "handshake");
  }
  conn->upgraded = true;
  conn->last_received = SteadyClock::now();
  conn->ws.text(true);
  do_read(conn);
}

void Client::on_close_deadline(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  if (ec || conn != conn_) return;
  end_connection(conn, CloseInfo{1000, "stopped; the server did not answer the close within close_timeout"});
}

void Client::on_connect_deadline(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  if (ec || conn != conn_ || conn->welcomed || conn->close_requested) return;
  end_connection(conn, CloseInfo{0, "no welcome within connect_timeout"});
}

// ---- reading ------------------------------------------------------------------

void Client::do_read(const std::shared_ptr<Connection>& conn) {
  conn->ws.async_read(conn->read_buffer, [self = shared_from_this(), conn](const error_code& ec, std::size_t) {
    self->on_read(conn, ec);
  });
}

void Client::on_read(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  if (conn != conn_) return;
  if (ec) {
    // Our own close is in flight and reads the server's answer itself: on_close ends it.
    if (conn->closing) return;
    // The server's close frame arrived even when answering it failed (a server that
    // closed the socket long before we read its frame): its code still decides
    // what comes next (4010 and 4011 end the client).
    const auto& r = conn->ws.reason();
    if (ec == websocket::error::closed || r.code != websocket::close_code::none) {
      return end_connection(conn, CloseInfo{static_cast<int>(r.code), std::string(r.reason.c_str())});
    }
    return fail(conn, ec, "read");
  }
  conn->last_received = SteadyClock::now();
  const std::string text = beast::buffers_to_string(conn->read_buffer.data());
  conn->read_buffer.consume(conn->read_buffer.size());
  if (conn->ws.got_text()) {
    try {
      handle_frame(conn, text);
    } catch (const std::exception& e) {
      return end_connection(conn, CloseInfo{0, std::string("handler threw: ") + e.what()});
    } catch (...) {
      return end_connection(conn, CloseInfo{0, "handler threw"});
    }
  }
  if (conn == conn_) do_read(conn);
}

void Client::handle_frame(const std::shared_ptr<Connection>& conn, std::string_view text) {
  // After stop() nothing more is handed out: unacked, it comes again on a later connection.
  if (stopping_) return;
  if (on_raw_frame_) on_raw_frame_(text);
  auto frame = protocol::decode_server_frame(text);
  if (!frame) return;  // not ours to judge: the raw handler has seen it
  if (auto* m = std::get_if<protocol::MsgFrame>(&*frame)) return handle_msg(conn, *m);
  if (auto* w = std::get_if<protocol::WelcomeFrame>(&*frame)) return handle_welcome(conn, *w);
  if (auto* p = std::get_if<protocol::PongFrame>(&*frame)) return handle_pong(conn, *p);
  if (auto* e = std::get_if<protocol::ErrorFrame>(&*frame); e != nullptr && on_error_frame_) {
    on_error_frame_(*e);
  }
}

void Client::handle_welcome(const std::shared_ptr<Connection>& conn, const protocol::WelcomeFrame& w) {
  // A different epoch means the inbox was recreated and seqs started again
  // (PROTOCOL.md 1): take what the server sends from resume_from on.
  if (!resume_epoch_.empty() && w.epoch != resume_epoch_) {
    set_processed(w.resume_from > 0 ? std::optional<std::uint64_t>(w.resume_from - 1) : std::nullopt);
  } else if (processed_ && w.head_seq < *processed_) {
    // The same epoch, but the inbox ends below what we processed: its tail
    // was lost (a restored backup, a Redis failover to a lagging replica,
    // sync=none and a power cut) and the seqs after head_seq will be given
    // to new messages. Dropping those as duplicates, and acking them, would
    // lose them for good.
    set_processed(w.head_seq > 0 ? std::optional<std::uint64_t>(w.head_seq) : std::nullopt);
  }
  resume_epoch_ = w.epoch;
  {
    std::lock_guard lock(epoch_mutex_);
    epoch_ = w.epoch;
  }
  if (++welcomes_ > 1) reconnects_.fetch_add(1);
  // The backoff starts again only once this connection has lasted
  // (end_connection): a server that welcomes and then closes, or a handler
  // that throws on the same message every time, must still see it grow.
  restart_bound_.reset();
  conn->welcomed = true;
  conn->welcomed_at = SteadyClock::now();
  conn->heartbeat = opts_.heartbeat.count() > 0 ? opts_.heartbeat : milliseconds(w.heartbeat_ms);
  arm_heartbeat(conn);
  if (on_welcome_) on_welcome_(w);
  if (conn == conn_) set_state(ClientState::open, CloseInfo{});
}

void Client::handle_msg(const std::shared_ptr<Connection>& conn, const protocol::MsgFrame& m) {
  if (m.seq == 0) return;  // not a seq: nothing to process or ack
  // PROTOCOL.md 4.5: seq is the identity; a processed seq is acked again, not processed.
  // Without auto_ack the application owns acks, and may be withholding this one.
  if (processed_ && m.seq <= *processed_) {
    duplicates_.fetch_add(1);
    if (opts_.auto_ack) queue_auto_ack(conn, m.seq);
    return;
  }
  if (on_message_) {
    on_message_(Message{m.seq, m.id, m.event, m.data_json, m.trace_id, m.ts, m.attempt});
  }
  set_processed(m.seq);
  if (opts_.auto_ack) queue_auto_ack(conn, m.seq);
}

// Acks are gathered: messages are handled in arrival order, and every message
// sent on this connection with a lower seq arrived before this one (first
// attempts come in seq order, a redelivery only after its first attempt), so
// `ack upto` the highest handled seq acknowledges exactly what was handled.
// A lone message is acked at once; in a burst (a replay) one frame goes out
// per ack_interval or per ack_batch messages, whichever comes first, instead
// of one per message: each ack frame costs a send here and a read, a parse
// and a window update on the server.
void Client::queue_auto_ack(const std::shared_ptr<Connection>& conn, std::uint64_t seq) {
  if (!conn || conn != conn_ || !conn->upgraded || conn->close_requested) return;
  conn->pending_ack_upto = std::max(conn->pending_ack_upto.value_or(0), seq);
  ++conn->pending_acks;
  if (!conn->writing) return do_write(conn);
  // A write is in flight: on_write's do_write sends it if due by then, and
  // otherwise arms the timer, as do_write does below.
}

// The end of the interval sends what waits, at the latest.
void Client::arm_ack_timer(const std::shared_ptr<Connection>& conn) {
  if (conn->ack_timer_armed) return;
  conn->ack_timer_armed = true;
  conn->ack_timer.expires_at(conn->last_ack_sent + opts_.ack_interval);
  conn->ack_timer.async_wait([self = shared_from_this(), conn](const error_code& ec) {
    self->on_ack_timer(conn, ec);
  });
}

bool Client::ack_due(const Connection& conn) const {
  return conn.pending_ack_upto &&
         (conn.close_requested || conn.pending_acks >= opts_.ack_batch ||
          SteadyClock::now() - conn.last_ack_sent >= opts_.ack_interval);
}

// Queues the waiting acks as one frame; the caller writes.
void Client::flush_acks(const std::shared_ptr<Connection>& conn) {
  if (!conn->pending_ack_upto) return;
  const auto upto = *conn->pending_ack_upto;
  const bool one = conn->pending_acks == 1;
  conn->pending_ack_upto.reset();
  conn->pending_acks = 0;
  conn->last_ack_sent = SteadyClock::now();
  conn->write_queue.push_back(one ? protocol::encode_ack(upto) : protocol::encode_ack_upto(upto));
}

void Client::on_ack_timer(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  conn->ack_timer_armed = false;
  if (ec || conn != conn_) return;
  if (!conn->writing) do_write(conn);  // else on_write's do_write sends or re-arms
}

void Client::handle_pong(const std::shared_ptr<Connection>& conn, const protocol::PongFrame& p) {
  std::int64_t id = 0;  // ours are plain integers; anything else is no pong of ours
  const auto [end, ec] = std::from_chars(p.id_json.data(), p.id_json.data() + p.id_json.size(), id);
  if (p.id_json.empty() || ec != std::errc{} || end != p.id_json.data() + p.id_json.size()) return;
  while (!conn->pings.empty() && conn->pings.front().first <= id) {
    if (conn->pings.front().first == id) {
      const auto rtt = SteadyClock::now() - conn->pings.front().second;
      last_rtt_us_.store(std::chrono::duration_cast<std::chrono::microseconds>(rtt).count());
    }
    conn->pings.pop_front();
  }
}

// ---- heartbeat ------------------------------------------------------------------

void Client::arm_heartbeat(const std::shared_ptr<Connection>& conn) {
  if (conn->close_requested) return;  // the timer holds the close deadline
  if (conn->heartbeat.count() <= 0) {
    conn->timer.cancel();  // also ends the connect deadline
    return;
  }
  conn->timer.expires_after(conn->heartbeat);
  conn->timer.async_wait([self = shared_from_this(), conn](const error_code& ec) {
    self->on_heartbeat(conn, ec);
  });
}

void Client::on_heartbeat(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  if (ec || conn != conn_) return;
  const auto now = SteadyClock::now();
  // The server answers a ping at once (PROTOCOL.md 3) and pings a silent client
  // itself (5): two intervals without a single frame means the path is dead.
  if (now - conn->last_received > 2 * conn->heartbeat) {
    return end_connection(conn, CloseInfo{0, "nothing from the server for two heartbeat intervals"});
  }
  const auto id = ++next_ping_id_;
  conn->pings.emplace_back(id, now);
  if (conn->pings.size() > max_outstanding_pings) conn->pings.pop_front();
  enqueue(conn, protocol::encode_ping(id, unix_ms_now()));
  if (conn == conn_) arm_heartbeat(conn);
}

// ---- writing --------------------------------------------------------------------

void Client::enqueue(const std::shared_ptr<Connection>& conn, std::string frame) {
  if (!conn || conn != conn_ || !conn->upgraded || conn->close_requested) return;
  if (conn->write_queue.size() >= max_queued_frames) {
    return end_connection(conn, CloseInfo{0, "write queue full: the server is not reading"});
  }
  conn->write_queue.push_back(std::move(frame));
  if (!conn->writing) do_write(conn);
}

void Client::do_write(const std::shared_ptr<Connection>& conn) {
  if (ack_due(*conn)) {
    flush_acks(conn);
  } else if (conn->pending_ack_upto) {
    arm_ack_timer(conn);
  }
  if (conn->write_queue.empty()) {
    if (conn->close_requested && !conn->closing) do_close(conn);
    return;
  }
  conn->writing = true;
  conn->ws.async_write(asio::buffer(conn->write_queue.front()),
                       [self = shared_from_this(), conn](const error_code& ec, std::size_t) {
                         self->on_write(conn, ec);
                       });
}

void Client::on_write(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  conn->writing = false;
  if (conn != conn_) return;
  if (ec) return fail(conn, ec, "write");
  conn->write_queue.pop_front();
  do_write(conn);
}

void Client::do_close(const std::shared_ptr<Connection>& conn) {
  conn->closing = true;
  conn->ws.async_close(websocket::close_code::normal, [self = shared_from_this(), conn](const error_code& ec) {
    self->on_close(conn, ec);
  });
}

void Client::on_close(const std::shared_ptr<Connection>& conn, const error_code& ec) {
  if (conn != conn_) return;
  if (ec) return fail(conn, ec, "close");
  const auto& r = conn->ws.reason();  // the server's answer to our close
  end_connection(conn, CloseInfo{r.code != 0 ? static_cast<int>(r.code) : 1000, std::string(r.reason.c_str())});
}

// ---- endings --------------------------------------------------------------------

void Client::fail(const std::shared_ptr<Connection>& conn, const error_code& ec, std::string_view where) {
  end_connection(conn, CloseInfo{0, std::string(where) + ": " + ec.message()});
}

void Client::end_connection(std::shared_ptr<Connection> conn, CloseInfo info,
                            milliseconds min_delay) {
  if (!conn || conn != conn_) return;
  conn_.reset();
  conn->timer.cancel();
  conn->ack_timer.cancel();
  conn->resolver.cancel();
  error_code ignored;
  beast::get_lowest_layer(conn->ws).close(ignored);  // completes what is pending

  if (stopping_) {
    stopping_ = false;
    set_state(ClientState::closed, info);
    if (start_after_stop_ && state_.load() == ClientState::closed) {
      start_after_stop_ = false;
      do_connect();
    }
    return;
  }
  // PROTOCOL.md 6: 4010 kicked and 4011 replaced must not reconnect by themselves.
  if (!opts_.auto_reconnect || info.code == 4010 || info.code == 4011) {
    return set_state(ClientState::closed, info);
  }
  if (conn->welcomed && SteadyClock::now() - conn->welcomed_at >= opts_.backoff_reset_after) backoff_.reset();
  milliseconds delay{0};
  if (info.code == 1001) {
    // Draining: spread the reconnects over 0..retry_after (PROTOCOL.md 6).
    restart_bound_ = going_away_bound(info.reason, opts_.backoff_max);
    delay = backoff_.uniform(*restart_bound_);
  } else {
    // After a 1001 the server said when it would be back: until the next
    // welcome no wait is longer than that bound, so a restart that takes a
    // few seconds does not leave clients in backoff_max waits once it is up.
    // Never below 100 ms (or backoff_initial if smaller): a retry_after of 0
    // must not make a loop of attempts without a pause.
    const milliseconds ceiling =
        restart_bound_ ? std::max(*restart_bound_, std::min(opts_.backoff_initial, milliseconds(100)))
                       : opts_.backoff_max;
    delay = std::max(backoff_.next(ceiling), min_delay);
  }
  set_state(ClientState::waiting_to_reconnect, info);
  if (state_.load() != ClientState::waiting_to_reconnect) return;
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    self->on_reconnect_timer(ec);
  });
}

void Client::on_reconnect_timer(const error_code& ec) {
  if (ec || stopping_ || conn_ || state_.load() != ClientState::waiting_to_reconnect) return;
  do_connect();
}

void Client::set_state(ClientState s, const CloseInfo& info) {
  state_.store(s);
  if (!on_state_) return;
  try {
    on_state_(s, info);
  } catch (...) {
    // Nothing to drop or retry for a state report; the client goes on.
  }
}

void Client::set_processed(std::optional<std::uint64_t> seq) {
  processed_ = seq;
  last_seq_.store(seq.value_or(0));
}

}  // namespace herald::sdk
