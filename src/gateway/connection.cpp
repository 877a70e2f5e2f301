#include "gateway/connection.hpp"

#include <algorithm>
#include <limits>
#include <random>

#include <boost/asio/post.hpp>

#include "core/clock.hpp"
#include "protocol/frame_codec.hpp"

namespace herald::gateway {
using std::chrono::milliseconds;

namespace {

// Inbound frames: a burst of twice the rate (PROTOCOL.md 9, HERALD_CLIENT_FRAME_RATE).
// A token's exp as Connection keeps it: unix seconds in 32 bits, which
// reach the year 2106; a later exp is as good as never.
std::uint32_t clamp_exp(std::int64_t exp) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(exp, 0, std::numeric_limits<std::uint32_t>::max()));
}

TokenRate client_frame_rate(const config::ServerConfig& config) {
  return {config.client_frame_rate, 2 * config.client_frame_rate};
}

}  // namespace

Connection::Connection(GatewayContext& ctx, transport::IoWorker& worker, const transport::WsLimits& limits,
                       ConnectionParams params)
    : WsSession(worker, limits, &ctx.metrics.ws),
      ctx_(ctx),
      user_(std::move(params.user)),
      device_(std::move(params.device)),
      conn_id_(params.conn_id),
      limits_ticket_(params.limits_ticket),
      attempt_(params.attempt),
      connected_at_ms_(unix_ms_now()),
      opening_(std::make_unique<Opening>(Opening{std::move(params.resume), {}, std::nullopt})),
      window_(0),
      frame_budget_(client_frame_rate(ctx.config), SteadyClock::now()),
      last_activity_(SteadyClock::now()),
      token_exp_(clamp_exp(params.token_exp)) {}

Connection::~Connection() = default;

double Connection::unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// ---- opening ----------------------------------------------------------------

void Connection::on_open() {
  const std::unique_ptr<Opening> opening = std::move(opening_);
  if (opening->close) {
    WsSession::close(opening->close->first, std::move(opening->close->second));
    return;
  }
  open_ = true;
  ctx_.metrics.connections_accepted.inc();
  ctx_.metrics.connections_active.add(1);
  last_activity_ = SteadyClock::now();
  send_welcome(*opening);
  if (closed_) return;
  arm_liveness(std::min(ctx_.config.heartbeat, ctx_.config.idle_timeout));
  // One probe right away so presence has an RTT before the first heartbeat.
  ping_sent_ = SteadyClock::now();
  ping_outstanding_ = true;
  ping();
  pump();
}

void Connection::send_welcome(const Opening& opening) {
  // Acks this worker holds in its cursor batch count before resuming.
  ctx_.flushers[worker().index()]->flush();
  store::InboxState inbox = ctx_.store.state(user_);
  std::optional<std::uint64_t> device_cursor = ctx_.store.cursor(user_, device_);
  if (auto replaced = opening.replaced.lock(); replaced && device_cursor) {
    // Acks of the replaced connection not yet flushed by its worker count.
    device_cursor = std::max(*device_cursor, replaced->info().cursor);
  }
  std::vector<store::DeviceCursor> user_cursors;
  std::optional<std::uint64_t> lost_mark;
  if (device_cursor) {
    lost_mark = ctx_.store.lost_mark(user_, device_);
  } else {
    user_cursors = ctx_.store.cursors(user_);
  }
  delivery::ResumeDecision d =
      delivery::decide_resume(opening.resume, inbox, device_cursor, user_cursors, lost_mark);
  if (!d.known_device) {
    // Known from its first welcome on (PROTOCOL.md 10).
    ctx_.store.register_device(user_, device_, d.position);
  }
  cursor_.store(std::max(d.position, device_cursor.value_or(0)), std::memory_order_relaxed);
  if (device_cursor && d.position > *device_cursor) {
    // The client says it processed up to last_seq: that is its cursor now.
    ctx_.flushers[worker().index()]->update(user_, device_, d.position);
  }
  window_ = delivery::InflightWindow(d.position);
  last_sent_.store(d.position, std::memory_order_relaxed);

  const auto first = ctx_.store.read_after(user_, d.position, 1, unix_ms_now());
  protocol::WelcomeFrame w;
  w.conn_id = conn_id_.str();
  w.user = user_;
  w.device = device_;
  w.epoch = inbox.epoch;
  w.head_seq = inbox.head_seq;
  w.resume_from = first.empty() ? inbox.head_seq + 1 : first.front()->seq;
  w.recovered = d.recovered;
  w.heartbeat_ms = ctx_.config.heartbeat.count();
  w.idle_timeout_ms = ctx_.config.idle_timeout.count();
  w.max_inflight = ctx_.config.max_inflight;
  w.server_time = unix_ms_now();
  send_frame(protocol::encode(w));
}

// ---- delivery ---------------------------------------------------------------

void Connection::notify() {
  // Coalesce: many publishes for a busy user cost one post.
  if (notify_pending_.exchange(true, std::memory_order_acq_rel)) return;
  boost::asio::post(worker().context(), [self = self_ptr()] {
    self->notify_pending_.store(false, std::memory_order_release);
    self->pump();
  });
}

void Connection::pump() {
  if (!open_ || closed_ || closing()) return;
  const std::int64_t now = unix_ms_now();
  while (window_.has_room(ctx_.config.max_inflight)) {
    const std::size_t room = window_.room(ctx_.config.max_inflight);
    const auto read_start = SteadyClock::now();
    auto batch = ctx_.store.read_after(user_, window_.last_sent(), room, now);
    ctx_.metrics.store_read_latency.observe(std::chrono::duration<double>(SteadyClock::now() - read_start).count());
    bool waiting = false;
    for (auto& m : batch) {
      // New messages go out only while the send queue has room: a backlog
      // larger than max_send_queue_bytes (64 messages near the size limit
      // are 4 MiB) is sent in steps, and resumes from on_send_room(); only
      // a client that stops reading overflows it (4009), with a redelivery
      // or a pong.
      std::string frame = protocol::encode(
          protocol::MsgFrame{m->seq, m->id, m->event, m->data_json, m->ts_ms, 1, m->trace_id});
      if (!has_send_room(frame.size())) {
        ctx_.metrics.send_queue_waits.inc();
        waiting = true;
        break;
      }
      auto& entry = window_.on_sent(std::move(m), now);
      ctx_.metrics.inflight.add(1);
      send_attempt(entry, std::move(frame));
      if (closed_ || closing()) return;
    }
    if (waiting || batch.size() < room) break;
  }
  inflight_.store(static_cast<std::uint32_t>(window_.size()), std::memory_order_relaxed);
  last_sent_.store(window_.last_sent(), std::memory_order_relaxed);
}

void Connection::send_attempt(delivery::InflightEntry& entry, std::string frame) {
  const auto& m = *entry.message;
  if (entry.attempt == 1) {
    ctx_.metrics.messages_delivered.inc();
    ctx_.metrics.push_latency.observe(static_cast<double>(unix_ms_now() - m.ts_ms) / 1000.0);
  } else {
    ctx_.metrics.messages_redelivered.inc();
  }
  const std::uint64_t seq = m.seq;
  ctx_.attempts.record_send(user_, device_, seq);
  // PROTOCOL.md 10: redelivery after the ack timeout, then initial x 2^(k-2);
  // after the last attempt, one more ack timeout before 4008.
  const milliseconds wait = entry.attempt < ctx_.retry.max_attempts
                                ? delivery::retry_delay(ctx_.retry, entry.attempt + 1, unit_random())
                                : ctx_.retry.ack_timeout;
  std::weak_ptr<Connection> weak = weak_self();
  entry.retry_timer = worker().wheel().schedule_after(wait, [weak, seq] {
    if (auto self = weak.lock()) self->on_retry_due(seq);
  });
  if (frame.empty()) {
    frame = protocol::encode(protocol::MsgFrame{m.seq, m.id, m.event, m.data_json, m.ts_ms, entry.attempt, m.trace_id});
  }
  send_frame(std::move(frame));
}

void Connection::on_send_room() { pump(); }

void Connection::on_retry_due(std::uint64_t seq) {
  // A closing connection (4008 on its way out, say) sends nothing more and
  // must not count one more ack timeout for each message still in flight.
  if (closed_ || !open_ || closing()) return;
  auto* entry = window_.find(seq);
  if (entry == nullptr) return;
  if (left_inbox(*entry->message)) {
    // Gone from the inbox while in flight: never sent again, and no reason
    // for a 4008. The cursor counts retained messages only, so it moves
    // past it as if it were acked (the device missed it: its dead letter,
    // if any, was written when it left).
    window_.ack(seq);
    window_shrank(1);
    pump();
    return;
  }
  if (entry->attempt >= ctx_.retry.max_attempts) {
    ctx_.metrics.ack_timeouts.inc();
    close(CloseReason::unresponsive, "ack timeout");
    return;
  }
  entry->attempt += 1;
  send_attempt(*entry);
}

bool Connection::left_inbox(const store::StoredMessage& m) const {
  // Past its TTL it is gone whatever the housekeeper has done yet; a
  // collapse or a trim shows as a read that no longer finds it (a retry
  // only, so the store read is rare).
  return m.expires_at_ms <= unix_ms_now() || ctx_.store.get(user_, m.seq) == nullptr;
}

void Connection::handle(const protocol::AckFrame& f) {
  if (!open_) return;
  std::vector<delivery::InflightEntry> acked;
  if (f.seq) acked = window_.ack(*f.seq);
  if (f.upto) {
    auto more = window_.ack_upto(*f.upto);
    acked.insert(acked.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  if (acked.empty()) return;
  const std::int64_t now = unix_ms_now();
  for (auto& e : acked) {
    worker().wheel().cancel(e.retry_timer);
    ctx_.metrics.ack_latency.observe(static_cast<double>(now - e.message->ts_ms) / 1000.0);
  }
  ctx_.metrics.messages_acked.inc(acked.size());
  window_shrank(acked.size());
  // Acked above a gap: the cursor stays, the inspection API still shows them acked.
  const std::uint64_t cursor = window_.cursor();
  for (const auto& e : acked) {
    if (e.message->seq <= cursor) continue;
    ctx_.attempts.mark_acked(user_, device_, e.message->seq);
    ctx_.flushers[worker().index()]->mark_acked(user_, device_, e.message->seq);
  }
  pump();
}

// Entries left the window (acked, or gone from the inbox): the gauges, and
// the cursor they may have let move.
void Connection::window_shrank(std::size_t left) {
  ctx_.metrics.inflight.sub(static_cast<std::int64_t>(left));
  inflight_.store(static_cast<std::uint32_t>(window_.size()), std::memory_order_relaxed);
  cursor_advanced();
}

void Connection::cursor_advanced() {
  const std::uint64_t c = window_.cursor();
  if (c <= cursor_.load(std::memory_order_relaxed)) return;  // a stored cursor never moves backwards
  cursor_.store(c, std::memory_order_relaxed);
  ctx_.attempts.forget_upto(user_, device_, c);
  ctx_.flushers[worker().index()]->update(user_, device_, c);
}

// ---- other frames -----------------------------------------------------------

void Connection::on_text(std::string_view text) {
  if (closed_) return;
  auto frame = protocol::decode_client_frame(text);
  if (!frame) {
    close(CloseReason::protocol_error, std::string(protocol::frame_error_message(frame.error())));
    return;
  }
  // An ack that acknowledges something we sent is bounded by what we send,
  // so it is free; every other frame spends from the rate budget
  // (docs/protocol.md: a client replaying its backlog must not hit 4029).
  if (const auto* ack = std::get_if<protocol::AckFrame>(&*frame); ack != nullptr && acks_inflight(*ack)) {
    handle(*ack);
    return;
  }
  if (!frame_budget_.try_take(client_frame_rate(ctx_.config), SteadyClock::now())) {
    close(CloseReason::rate_limited, "too many frames");
    return;
  }
  std::visit([this](const auto& f) { handle(f); }, *frame);
}

bool Connection::acks_inflight(const protocol::AckFrame& f) {
  if (!open_ || window_.size() == 0) return false;
  if (f.seq && window_.find(*f.seq) != nullptr) return true;
  return f.upto && *f.upto >= window_.lowest_unacked();
}

void Connection::handle(const protocol::PingFrame& f) {
  send_frame(protocol::encode(protocol::PongFrame{f.id_json, f.ts_json, unix_ms_now()}));
}

void Connection::handle(const protocol::RefreshFrame& f) {
  auto claims = ctx_.jwt.verify(f.token, unix_ms_now());
  if (!claims) {
    send_frame(protocol::encode(protocol::ErrorFrame{
        "invalid_token", std::string(auth::jwt_error_message(claims.error()))}));
    return;
  }
  if (claims->sub != user_) {
    send_frame(protocol::encode(
        protocol::ErrorFrame{"invalid_token", "refresh token is for another user"}));
    return;
  }
  token_exp_ = clamp_exp(claims->exp);
  arm_liveness(next_liveness_check());
  send_frame(protocol::encode(protocol::RefreshedFrame{token_exp_}));
}

void Connection::handle(const protocol::UnusableFrame& f) {
  send_frame(protocol::encode(protocol::ErrorFrame{f.error_code, f.message}));
}

void Connection::send_frame(std::string text) {
  if (closed_ || opening_) return;
  switch (send(std::move(text))) {
    case transport::SendResult::queued:
    case transport::SendResult::closed:
      return;
    case transport::SendResult::queue_full:
      close(CloseReason::slow_consumer, "send queue over limit");
      return;
  }
}

// ---- liveness and token expiry ------------------------------------------------

void Connection::on_activity() { last_activity_ = SteadyClock::now(); }

void Connection::on_pong() {
  if (!ping_outstanding_) return;
  ping_outstanding_ = false;
  pong_was_asked_ = true;
  const auto rtt = SteadyClock::now() - ping_sent_;
  const auto rtt_us = std::chrono::duration_cast<std::chrono::microseconds>(rtt).count();
  rtt_us_.store(static_cast<std::int32_t>(std::min<std::int64_t>(rtt_us, std::numeric_limits<std::int32_t>::max())), std::memory_order_relaxed);
  ctx_.metrics.heartbeat_rtt.observe(std::chrono::duration<double>(rtt).count());
}

// Ping and pong control frames spend from the same budget as text frames:
// Beast answers every ping with a pong, so a ping flood costs writes too.
// The pong that answers the server's own ping is free: the client owes it
// (RFC 6455 5.5.2), and it must not eat into "burst twice that".
void Connection::on_control_frame() {
  if (pong_was_asked_) {
    pong_was_asked_ = false;
    return;
  }
  if (closed_ || rate_close_posted_) return;
  if (frame_budget_.try_take(client_frame_rate(ctx_.config), SteadyClock::now())) return;
  rate_close_posted_ = true;
  boost::asio::post(worker().context(), [self = self_ptr()] {
    self->close(CloseReason::rate_limited, "too many frames");
  });
}

// The connection's deadline, on the session's one timer (an idle
// connection holds nothing else): the liveness check (PROTOCOL.md 5) or the
// token's expiry (PROTOCOL.md 10), whichever is due first.
void Connection::arm_liveness(milliseconds liveness_due) {
  const milliseconds token_due(std::max<std::int64_t>(0, token_deadline_ms() - unix_ms_now()));
  arm_owner_timer(std::min(liveness_due, token_due));
}

// Close 4001 at exp plus the leeway unless refreshed.
std::int64_t Connection::token_deadline_ms() const {
  return std::int64_t{token_exp_} * 1000 + ctx_.config.jwt_leeway.count();
}

milliseconds Connection::next_liveness_check() const {
  const auto silent = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - last_activity_);
  const auto& cfg = ctx_.config;
  const milliseconds next_ping = silent < cfg.heartbeat ? cfg.heartbeat - silent : cfg.heartbeat;
  milliseconds next = std::min(cfg.idle_timeout - silent, next_ping);
  // A write in flight is looked at again when it would have stalled too long.
  if (const milliseconds stalled = write_stalled_for(); stalled.count() > 0) {
    next = std::min(next, cfg.send_timeout - stalled);
  }
  return std::max(milliseconds(1), next);
}

void Connection::on_owner_timer() {
  if (closed_) return;
  if (unix_ms_now() >= token_deadline_ms()) {
    close(CloseReason::token_invalid, "token expired");
    return;
  }
  const auto now = SteadyClock::now();
  const auto silent = std::chrono::duration_cast<milliseconds>(now - last_activity_);
  const auto& cfg = ctx_.config;
  if (silent >= cfg.idle_timeout) {
    close(CloseReason::unresponsive, "idle timeout");
    return;
  }
  // A client that keeps sending (acks, pings) but stopped reading: once its
  // messages leave the inbox (collapse, trim) nothing would ever overflow
  // the queue, so a write that makes no progress ends it.
  if (write_stalled_for() >= cfg.send_timeout) {
    ctx_.metrics.send_timeouts.inc();
    close(CloseReason::slow_consumer, "send timed out");
    return;
  }
  // PROTOCOL.md 5: a WebSocket ping whenever the client has been silent
  // for heartbeat_ms, answered or not (a lost pong is no reason to stop
  // asking). The RTT is measured from the latest ping.
  if (silent >= cfg.heartbeat) {
    ping_sent_ = now;
    ping_outstanding_ = true;
    ping();
  }
  arm_liveness(next_liveness_check());
}

// ---- closing ----------------------------------------------------------------

void Connection::kick(CloseReason reason) {
  boost::asio::post(worker().context(), [self = self_ptr(), reason] {
    std::string text;
    if (reason == CloseReason::going_away) {
      // Spread reconnects of a draining node (PROTOCOL.md 6): each client
      // draws its delay in 0..retry_after; the bound itself varies between
      // half and all of drain_retry_after so reconnects do not come in step.
      const auto bound = static_cast<double>(self->ctx_.config.drain_retry_after.count());
      text = "retry_after=" + std::to_string(static_cast<std::int64_t>((0.5 + 0.5 * self->unit_random()) * bound));
    } else if (reason == CloseReason::kicked) {
      text = "kicked by operator";
    } else if (reason == CloseReason::replaced) {
      text = "replaced by a newer connection";
    }
    self->close(reason, std::move(text));
  });
}

void Connection::close(CloseReason reason, std::string text) {
  if (closed_) return;
  if (opening_) {
    // Not open yet: close once the upgrade completes.
    if (!opening_->close) opening_->close.emplace(reason, std::move(text));
    return;
  }
  // Presence stops listing the device once its close frame is on the way,
  // not when the closing handshake ends.
  closing_.store(true, std::memory_order_relaxed);
  WsSession::close(reason, std::move(text), reason == CloseReason::going_away);
}

void Connection::on_closed(CloseReason reason) {
  if (closed_) return;
  closed_ = true;
  closing_.store(true, std::memory_order_relaxed);
  auto left = window_.take_all();
  for (auto& e : left) worker().wheel().cancel(e.retry_timer);
  ctx_.metrics.inflight.sub(static_cast<std::int64_t>(left.size()));
  // A device that reconnects right away must not get acked messages again.
  ctx_.flushers[worker().index()]->flush();
  ctx_.hub.remove(*this);
  if (ctx_.presence != nullptr) {
    ctx_.presence->disconnected(user_, device_, conn_id_.str(), connected_at_ms_);
  }
  ctx_.limits.release(limits_ticket_);
  ctx_.metrics.closed_counter(reason).inc();
  if (open_) ctx_.metrics.connections_active.sub(1);
}

hub::ConnectionInfo Connection::info() const {
  hub::ConnectionInfo i;
  i.user = user_;
  i.device = device_;
  i.conn_id = conn_id_.str();
  i.connected_at_ms = connected_at_ms_;
  const auto rtt = rtt_us_.load(std::memory_order_relaxed);
  if (rtt >= 0) i.rtt_ms = static_cast<double>(rtt) / 1000.0;
  i.cursor = cursor_.load(std::memory_order_relaxed);
  i.inflight = inflight_.load(std::memory_order_relaxed);
  i.last_sent = last_sent_.load(std::memory_order_relaxed);
  i.closing = closing_.load(std::memory_order_relaxed);
  return i;
}

}  // namespace herald::gateway
