#include "transport/ws_session.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/buffer.hpp>

#include "transport/ws_counters.hpp"

namespace herald::transport {
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;

namespace {

// The subprotocol we speak, offered only when the client asks (PROTOCOL.md 2).
bool asks_for_herald_v1(const WsSession::Request& req) {
  auto it = req.find(http::field::sec_websocket_protocol);
  if (it == req.end()) return false;
  std::string_view list = it->value();
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == "herald.v1") return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

void bump(metrics::Counter* c, std::uint64_t n = 1) {
  if (c != nullptr) c->inc(n);
}

// Steady milliseconds cut to 32 bits: deadlines and write starts, each
// compared only with times within days of it.
std::uint32_t ms32(timers::TimingWheel::Clock::time_point t) {
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// Asio recycles handler memory per thread, so a new operation lands in a
// block that an earlier one left, whatever its size: a parked connection's
// readability wait would sit in the ~800 bytes of a Beast write. An
// allocator other than std::allocator opts out: the wait gets a block of its
// own size.
template <class T>
struct ExactSizeAllocator {
  using value_type = T;
  ExactSizeAllocator() noexcept = default;
  template <class U>
  ExactSizeAllocator(const ExactSizeAllocator<U>&) noexcept {}  // NOLINT: rebinding converts implicitly
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { ::operator delete(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const ExactSizeAllocator<U>&) const noexcept { return true; }
};

// What a rebuilt stream accepts to reach the open state (its 101 answer is
// swallowed, see ParkableSocket). Built once, only read afterwards.
const http::request<http::empty_body>& stock_upgrade_request() {
  static const http::request<http::empty_body> request = [] {
    http::request<http::empty_body> r{http::verb::get, "/", 11};
    r.set(http::field::host, "herald");
    r.set(http::field::upgrade, "websocket");
    r.set(http::field::connection, "Upgrade");
    r.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    r.set(http::field::sec_websocket_version, "13");
    return r;
  }();
  return request;
}

}  // namespace

WsSession::WsSession(IoWorker& worker, const WsLimits& limits, WsCounters* counters)
    : worker_(worker),
      slot_(TcpSocket(worker.context())),
      ws_(std::make_unique<LiveStream>(slot_)),
      limits_(limits),
      counters_(counters) {
  configure_stream();
}

WsSession::~WsSession() {
  const std::size_t queued = queued_bytes();
  if (counters_ != nullptr && counters_->send_queue_bytes != nullptr && queued > 0) {
    counters_->send_queue_bytes->sub(static_cast<std::int64_t>(queued));
  }
  set_parked(false);
}

void WsSession::configure_stream() {
  ws_->read_message_max(limits_.max_message_bytes);
  ws_->auto_fragment(false);
  ws_->control_callback([this](websocket::frame_type kind, beast::string_view) {
    bump(counters_ ? counters_->frames_in : nullptr);
    io_since_check_ = true;
    if (parking_) {
      // The cancel came too late: a frame was read. Not from inside Beast's
      // read operation: the sends that waited may start now.
      boost::asio::post(slot_.socket.get_executor(), [self = shared_from_this()] { self->park_aborted(); });
    }
    if (finished_) return;
    on_activity();
    if (kind == websocket::frame_type::close) {
      // The client closes: Beast answers and then waits for the client to
      // close TCP. Bound that wait, and count the end as the client's, not
      // as an idle timeout (a client that never closes its socket).
      if (!closing_) {
        closing_ = true;
        close_reason_ = CloseReason::normal;
        arm_timer(TimerFor::close, limits_.close_timeout);
      }
      return;
    }
    if (kind == websocket::frame_type::pong) on_pong();
    on_control_frame();
  });
}

void WsSession::accept(TcpSocket socket, Request request) {
  slot_.socket = std::move(socket);
  const bool subprotocol = asks_for_herald_v1(request);
  ws_->set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& res) {
    res.set(http::field::server, "herald");
    if (subprotocol) res.set(http::field::sec_websocket_protocol, "herald.v1");
  }));
  auto req = std::make_shared<Request>(std::move(request));
  // A client that does not read our 101 must not hold the socket.
  arm_timer(TimerFor::handshake, limits_.handshake_timeout);
  ws_->async_accept(*req, [self = shared_from_this(), req](boost::system::error_code ec) {
    self->on_accept(ec);
  });
}

void WsSession::on_accept(boost::system::error_code ec) {
  if (timer_for_ == TimerFor::handshake) cancel_timer();
  if (ec) return fail(ec, "accept");
  open_ = true;
  on_open();
  if (closing_) {
    if (!writing_ && !pinging_ && !close_sent_) do_close();
    return;
  }
  do_read();
  arm_park_timer(/*quick=*/true);
}

// An idle connection waits with a read of at most read_chunk bytes into the
// live stream: Beast's async_read would prepare a 1.5 KB dynamic buffer
// before a byte arrives, and keep it for as long as the client is silent.
// Client frames are acks and pings, which fit; a longer message continues
// into the stream's `message`, sized by Beast's hint, and is freed once
// handled.
void WsSession::do_read() {
  std::string& message = ws_->message;
  if (message.empty()) {
    ws_->async_read_some(boost::asio::buffer(ws_->read_chunk),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t bytes) {
                          // After a park (an error) the live stream is gone.
                          self->on_read_some(ec, ec ? nullptr : self->ws_->read_chunk.data(), bytes);
                        });
    return;
  }
  const std::size_t had = message.size();
  const std::size_t want = std::clamp<std::size_t>(ws_->read_size_hint(4096), 512, 65536);
  message.resize(had + want);
  ws_->async_read_some(boost::asio::buffer(message.data() + had, want),
                      [self = shared_from_this(), had](boost::system::error_code ec, std::size_t bytes) {
                        // A connection with a partial message never parks: the stream is there.
                        self->ws_->message.resize(had + bytes);
                        self->on_read_some(ec, nullptr, bytes);
                      });
}

// chunk: the bytes are in the read chunk (else already appended to the
// stream's `message`).
void WsSession::on_read_some(boost::system::error_code ec, const char* chunk, std::size_t bytes) {
  if (ec) return on_read_error(ec);
  if (finished_) return;
  io_since_check_ = true;
  if (parking_) park_aborted();
  bump(counters_ ? counters_->bytes_in : nullptr, bytes);
  std::string& message = ws_->message;
  if (!ws_->got_text()) {
    std::string().swap(message);
    close(CloseReason::protocol_error, "binary frames are not accepted");
    return;
  }
  if (ws_->is_message_done() && chunk != nullptr && message.empty()) {
    on_message(std::string_view(chunk, bytes));  // the common case: no copy, no allocation
  } else {
    if (chunk != nullptr) message.append(chunk, bytes);
    if (!ws_->is_message_done()) {
      if (!closing_) do_read();
      return;
    }
    const std::string whole = std::exchange(message, std::string());
    on_message(whole);
  }
  if (!closing_ && !finished_) do_read();
}

void WsSession::on_message(std::string_view text) {
  bump(counters_ ? counters_->frames_in : nullptr);
  on_activity();
  on_text(text);
}

void WsSession::on_read_error(boost::system::error_code ec) {
  const bool was_parking = parking_;
  parking_ = false;
  if (was_parking && ec == boost::asio::error::operation_aborted && !finished_) return park();
  if (ec == websocket::error::closed) return finish(closing_ ? close_reason_ : CloseReason::normal);
  if (ec == websocket::error::message_too_big) return finish(CloseReason::message_too_big);
  if (ec == websocket::error::bad_frame_payload) return finish(CloseReason::protocol_error);
  if (closing_) return finish(close_reason_);
  fail(ec, "read");
}

SendResult WsSession::send(std::shared_ptr<const std::string> frame) {
  if (!open_ || closing_ || finished_) return SendResult::closed;
  if (parked_) {
    unpark(/*cancel_wait=*/true, /*quick=*/false);  // the queue lives in the stream
    if (finished_) return SendResult::closed;
  }
  SendQueue& q = ws_->sends;
  if (!q.frames.empty() && q.bytes + frame->size() > limits_.max_send_queue_bytes) {
    bump(counters_ ? counters_->send_queue_full : nullptr);
    return SendResult::queue_full;
  }
  q.bytes += frame->size();
  if (counters_ != nullptr && counters_->send_queue_bytes != nullptr) {
    counters_->send_queue_bytes->add(static_cast<std::int64_t>(frame->size()));
  }
  q.frames.push_back(std::move(frame));
  if (writing_ || pinging_ || parking_) return SendResult::queued;  // parking: park() or park_aborted() resumes
  do_write();
  return SendResult::queued;
}

bool WsSession::has_send_room(std::size_t frame_bytes) {
  const std::size_t queued = queued_bytes();
  if (queued == 0 || queued + frame_bytes <= limits_.max_send_queue_bytes) return true;
  room_wanted_ = true;
  return false;
}

void WsSession::do_write() {
  writing_ = true;
  io_since_check_ = true;
  ws_->write_started = ms32(worker_.wheel().now());
  ws_->text(true);
  ws_->async_write(boost::asio::buffer(*ws_->sends.frames.front()),
                  [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                    self->on_write(ec);
                  });
}

void WsSession::on_write(boost::system::error_code ec) {
  writing_ = false;
  SendQueue& q = ws_->sends;
  const std::size_t size = q.frames.front()->size();
  q.frames.pop_front();
  q.bytes -= size;
  if (counters_ != nullptr) {
    if (counters_->send_queue_bytes != nullptr) counters_->send_queue_bytes->sub(static_cast<std::int64_t>(size));
    bump(counters_->frames_out);
    bump(counters_->bytes_out, size);
  }
  if (ec) return fail(ec, "write");
  if (finished_) return;
  if (ping_wanted_ && !closing_) {
    do_ping();
  } else if (!q.frames.empty()) {
    do_write();
  } else {
    release_queue();
    if (closing_ && !close_sent_ && !pinging_) return do_close();
  }
  // Last, with the next write already started: what on_send_room() sends
  // queues behind it.
  if (room_wanted_ && !closing_ && q.bytes <= limits_.max_send_queue_bytes / 2) {
    room_wanted_ = false;
    on_send_room();
  }
}

// An idle connection holds no queue storage (the welcome alone would leave
// some behind for good).
void WsSession::release_queue() {
  auto& frames = ws_->sends.frames;
  if (frames.empty() && frames.capacity() > 0) std::remove_reference_t<decltype(frames)>().swap(frames);
}

void WsSession::ping() {
  if (!open_ || closing_ || finished_ || pinging_) return;  // a ping in flight answers for this one
  if (writing_ || parking_) {
    // One write at a time: the ping goes right after the frame being
    // written. Dropping it would leave the caller waiting for a pong that
    // never comes (the welcome is always being written when the first
    // probe is asked for).
    ping_wanted_ = true;
    return;
  }
  if (parked_) unpark(/*cancel_wait=*/true, /*quick=*/true);
  if (!finished_) do_ping();
}

void WsSession::do_ping() {
  ping_wanted_ = false;
  pinging_ = true;
  io_since_check_ = true;
  ws_->write_started = ms32(worker_.wheel().now());
  ws_->async_ping({}, [self = shared_from_this()](boost::system::error_code ec) {
    self->pinging_ = false;
    if (ec) return self->fail(ec, "ping");
    if (self->finished_) return;
    if (!self->ws_->sends.frames.empty()) return self->do_write();
    if (self->closing_ && !self->close_sent_) self->do_close();
  });
}

void WsSession::close(CloseReason reason, std::string text, bool flush) {
  if (finished_ || closing_) return;
  closing_ = true;
  close_reason_ = reason;
  if (!text.empty()) close_text_ = std::make_unique<std::string>(std::move(text));
  if (!flush && ws_) {
    // Keep only the frame being written: its buffer is in use.
    SendQueue& q = ws_->sends;
    while (q.frames.size() > (writing_ ? 1u : 0u)) {
      q.bytes -= q.frames.back()->size();
      if (counters_ != nullptr && counters_->send_queue_bytes != nullptr) {
        counters_->send_queue_bytes->sub(static_cast<std::int64_t>(q.frames.back()->size()));
      }
      q.frames.pop_back();
    }
  }
  // Replaces a handshake deadline (this one is shorter and does more) or
  // the park check.
  arm_timer(TimerFor::close, limits_.close_timeout);
  if (!open_ || writing_ || pinging_ || parking_ || (ws_ && !ws_->sends.frames.empty())) return;
  if (parked_) unpark(/*cancel_wait=*/true, /*quick=*/false);
  if (!finished_) do_close();
}

void WsSession::do_close() {
  close_sent_ = true;
  websocket::close_reason cr(static_cast<websocket::close_code>(close_code(close_reason_)),
                            close_text_ ? std::string_view(*close_text_) : std::string_view());
  ws_->async_close(cr, [self = shared_from_this()](boost::system::error_code ec) {
    self->on_close_done(ec);
  });
}

void WsSession::on_close_done(boost::system::error_code) {
  boost::system::error_code ignored;
  slot_.socket.close(ignored);
  finish(close_reason_);
}

void WsSession::fail(boost::system::error_code ec, const char*) {
  // Asio/Beast errors end here (CONVENTIONS.md "Errors"): the peer vanished
  // or the socket broke; nothing to report to the client.
  boost::system::error_code ignored;
  slot_.socket.close(ignored);
  finish(closing_ ? close_reason_ : (ec == boost::asio::error::operation_aborted
                                         ? close_reason_
                                         : CloseReason::transport_error));
}

void WsSession::finish(CloseReason reason) {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  timer_for_ = TimerFor::none;
  owner_timer_ = false;
  schedule_timer();  // drops the wheel node
  set_parked(false);
  on_closed(reason);
}

// ---- the timer
//
// One wheel node per session, at the earlier of two deadlines: the
// session's own (timer_for_) and the owner's (arm_owner_timer()). A parked
// connection thus holds a single timer, and the wheel's slab peaks at one
// node per connection instead of two.

namespace {

constexpr std::chrono::milliseconds kMaxTimerDelay{std::int64_t{1} << 30};  // ~12 days, well inside int32 ms

// a at or after b, for deadlines within 24 days of each other.
bool not_before(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) >= 0; }

}  // namespace

std::chrono::milliseconds WsSession::write_stalled_for() const {
  if (!ws_ || (!writing_ && !pinging_)) return std::chrono::milliseconds(0);
  const auto since = static_cast<std::int32_t>(ms32(worker_.wheel().now()) - ws_->write_started);
  return std::chrono::milliseconds(std::max(0, since));
}

void WsSession::arm_timer(TimerFor what, std::chrono::milliseconds after) {
  timer_for_ = what;
  session_due_ = ms32(worker_.wheel().now() + std::clamp(after, std::chrono::milliseconds(0), kMaxTimerDelay));
  schedule_timer();
}

void WsSession::cancel_timer() {
  if (timer_for_ == TimerFor::none) return;
  timer_for_ = TimerFor::none;
  schedule_timer();
}

void WsSession::arm_owner_timer(std::chrono::milliseconds after) {
  if (finished_) return;
  owner_timer_ = true;
  owner_due_ = ms32(worker_.wheel().now() + std::clamp(after, std::chrono::milliseconds(0), kMaxTimerDelay));
  schedule_timer();
}

// Moves the wheel node to the earlier armed deadline (or drops it).
void WsSession::schedule_timer() {
  auto& wheel = worker_.wheel();
  wheel.cancel(timer_);
  timer_ = {};
  const bool session = timer_for_ != TimerFor::none;
  if (!session && !owner_timer_) return;
  std::uint32_t due = session ? session_due_ : owner_due_;
  if (session && owner_timer_ && !not_before(owner_due_, session_due_)) due = owner_due_;
  const auto now = wheel.now();
  const std::chrono::milliseconds in(static_cast<std::int32_t>(due - ms32(now)));
  timer_ = wheel.schedule(now + in, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_timer();
  });
}

void WsSession::on_timer() {
  timer_ = {};
  const std::uint32_t now = ms32(worker_.wheel().now());
  if (timer_for_ != TimerFor::none && not_before(now, session_due_)) {
    run_session_timer(std::exchange(timer_for_, TimerFor::none));
  }
  if (owner_timer_ && !finished_ && not_before(now, owner_due_)) {
    owner_timer_ = false;
    on_owner_timer();
  }
  if (!timer_.valid()) schedule_timer();  // the deadline not yet due, unless a handler re-armed already
}

void WsSession::run_session_timer(TimerFor what) {
  boost::system::error_code ignored;
  switch (what) {
    case TimerFor::handshake:
      slot_.socket.close(ignored);
      return;
    case TimerFor::park:
      return on_park_timer();
    case TimerFor::close:
      slot_.socket.close(ignored);
      return finish(close_reason_);
    case TimerFor::none:
      return;
  }
}

// ---- parking

// Not while closing: the close deadline holds the timer then.
//
// quick: the connection has just opened, or woke for a client frame or a
// ping of ours. Such an exchange is most often all there is (a heartbeat
// every 25 s, say), and a connection kept whole for two more periods after
// each would spend a tenth of its life holding its stream. So the checks
// come every park_after/8 instead, until one finds the connection quiet (it
// parks) or kQuickParkChecks have found traffic (it is in use: back to
// whole periods). The first check mostly sees the exchange itself.
void WsSession::arm_park_timer(bool quick) {
  if (limits_.park_after.count() <= 0 || finished_ || closing_) return;
  quick_park_checks_ = quick ? kQuickParkChecks : 0;
  arm_timer(TimerFor::park, quick ? quick_park_after() : limits_.park_after);
}

std::chrono::milliseconds WsSession::quick_park_after() const {
  return std::max(std::chrono::milliseconds(1), limits_.park_after / 8);
}

// A connection parks after a whole park_after period with no frame either
// way (so between one and two periods of silence; in quick mode, between
// one and two eighths), when nothing is queued, being written or half read.
// Beast's read is then waiting for the next frame header with an empty
// buffer: cancelling it loses no byte.
void WsSession::on_park_timer() {
  if (finished_ || closing_ || parked_ || parking_) return;
  const bool quiet = !io_since_check_;
  io_since_check_ = false;
  const bool at_rest = !writing_ && !pinging_ && !ping_wanted_ && ws_->sends.frames.empty() && ws_->message.empty();
  if (!quiet || !at_rest || !ws_->is_message_done() || !slot_.frame_wait) {
    if (quick_park_checks_ > 1) {
      quick_park_checks_ = quick_park_checks_ - 1;
      return arm_timer(TimerFor::park, quick_park_after());
    }
    return arm_park_timer(/*quick=*/false);
  }
  parking_ = true;
  boost::system::error_code ignored;
  slot_.socket.cancel(ignored);  // on_read_error() sees operation_aborted and parks
}

void WsSession::park() {
  SendQueue sends = std::move(ws_->sends);
  ws_.reset();
  slot_.frame_wait = false;
  if (!sends.frames.empty() || ping_wanted_ || (closing_ && !close_sent_)) {
    // Something was asked for while the cancel was on its way.
    const bool rebuilt = hydrate();
    ws_->sends = std::move(sends);
    if (!rebuilt) return;
    do_read();
    arm_park_timer();
    resume_writes();
    return;
  }
  set_parked(true);
  wait_readable();
}

// The cancelled read had already completed: no park, the stream carries on.
void WsSession::park_aborted() {
  const bool was_parking = parking_;
  parking_ = false;
  if (!was_parking || finished_) return;
  arm_park_timer();
  if (!writing_ && !pinging_) resume_writes();
}

// Data that came while nothing waited on the socket still wakes the wait:
// Asio re-arms the descriptor (EPOLL_CTL_MOD) when it queues one. EOF wakes
// it like data (the rebuilt stream's read then ends the connection); an
// error on the wait itself ends it here.
void WsSession::wait_readable() {
  slot_.socket.async_wait(
      TcpSocket::wait_read,
      boost::asio::bind_allocator(ExactSizeAllocator<void>(),
                                  [self = shared_from_this(), gen = park_gen_](boost::system::error_code ec) {
                                    if (gen != self->park_gen_ || self->finished_ || !self->parked_) return;
                                    if (ec) return self->fail(ec, "wait");
                                    self->unpark(/*cancel_wait=*/false, /*quick=*/true);
                                  }));
}

// The client sent something (or closed), or we have something to send.
void WsSession::unpark(bool cancel_wait, bool quick) {
  if (cancel_wait) {
    ++park_gen_;  // the cancelled wait completes later and must be ignored
    boost::system::error_code ignored;
    slot_.socket.cancel(ignored);
  }
  set_parked(false);
  bump(counters_ ? counters_->unparks : nullptr);
  if (!hydrate()) return;
  do_read();
  arm_park_timer(quick);
}

// A new Beast stream on the same socket, brought to the open state by
// accepting a stock upgrade request whose answer is swallowed.
bool WsSession::hydrate() {
  ws_ = std::make_unique<LiveStream>(slot_);
  configure_stream();
  slot_.swallow_writes = true;
  boost::system::error_code ec;
  ws_->accept(stock_upgrade_request(), ec);
  slot_.swallow_writes = false;
  if (ec) {
    fail(ec, "rebuild");
    return false;
  }
  return true;
}

void WsSession::resume_writes() {
  if (finished_) return;
  if (ping_wanted_ && !closing_) return do_ping();
  if (!ws_->sends.frames.empty()) return do_write();
  if (closing_ && !close_sent_) do_close();
}

void WsSession::set_parked(bool parked) {
  if (parked_ == parked) return;
  parked_ = parked;
  if (counters_ != nullptr && counters_->parked != nullptr) {
    if (parked) {
      counters_->parked->add(1);
    } else {
      counters_->parked->sub(1);
    }
  }
}

}  // namespace herald::transport
