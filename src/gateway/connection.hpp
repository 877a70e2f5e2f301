#pragma once
// One device's live WebSocket: the protocol of PROTOCOL.md 3-5, derived
// from the transport::WsSession that carries it (one object per
// connection). Sends the welcome, delivers the inbox from the resume
// position through an inflight window, retries unacked messages with
// backoff, tracks acks into the cursor, answers pings and refreshes, and
// closes on idle, token expiry, rate abuse or slow consumption.
//
// Owned by its I/O worker: the session's hooks run there; LiveConnection
// calls from other threads post to it.
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/token_bucket.hpp"
#include "delivery/inflight_window.hpp"
#include "delivery/resume_position.hpp"
#include "gateway/conn_id.hpp"
#include "gateway/connection_limits.hpp"
#include "gateway/gateway_context.hpp"
#include "hub/live_connection.hpp"
#include "protocol/frames.hpp"
#include "transport/ws_session.hpp"

namespace herald::gateway {

struct ConnectionParams {
  std::string user;
  std::string device;
  ConnId conn_id = ConnId::random();
  ConnectionLimits::Ticket limits_ticket;  // the connection gives it back when it closes
  std::int64_t token_exp = 0;  // unix seconds
  delivery::ResumeRequest resume;
  hub::AttemptId attempt;  // ?attempt=, see hub::AttemptId
};

class Connection final : public transport::WsSession, public hub::LiveConnection {
 public:
  // limits: as for transport::WsSession, must outlive the connection.
  Connection(GatewayContext& ctx, transport::IoWorker& worker, const transport::WsLimits& limits,
             ConnectionParams params);
  ~Connection() override;

  // hub::LiveConnection (any thread)
  void notify() override;
  void kick(CloseReason reason) override;
  hub::ConnectionInfo info() const override;
  const std::string& device() const override { return device_; }
  hub::AttemptId attempt() const override { return attempt_; }
  const std::string& user() const override { return user_; }

  // The connection of the same device this one replaces (4011). Its cursor
  // may still wait in another worker's flusher: the welcome takes it as a
  // floor so that the device's cursor does not step back. Owner thread,
  // before on_open.
  void set_replaced(std::weak_ptr<hub::LiveConnection> replaced) { opening_->replaced = std::move(replaced); }

 private:
  // transport::WsSession's hooks (owner thread)
  void on_open() override;
  void on_text(std::string_view text) override;
  void on_activity() override;
  void on_pong() override;
  void on_control_frame() override;
  void on_closed(CloseReason reason) override;
  void on_owner_timer() override;  // liveness and token expiry, see arm_liveness()
  void on_send_room() override;    // the send queue drained: deliver what waited

  // What only the opening needs: held apart and freed once the welcome is
  // sent, so an open connection does not carry it.
  struct Opening {
    delivery::ResumeRequest resume;
    std::weak_ptr<hub::LiveConnection> replaced;  // see set_replaced()
    // A close asked for before the upgrade finished (rare).
    std::optional<std::pair<CloseReason, std::string>> close;
  };

  void send_welcome(const Opening& opening);
  void pump();
  // Sends the entry's current attempt; `frame` is its encoding when the
  // caller already made it (a first attempt, sized before it was sent).
  void send_attempt(delivery::InflightEntry& entry, std::string frame = {});
  void on_retry_due(std::uint64_t seq);
  // Expired, collapsed away or trimmed since it was sent (PROTOCOL.md 1).
  bool left_inbox(const store::StoredMessage& m) const;
  void handle(const protocol::AckFrame& f);
  bool acks_inflight(const protocol::AckFrame& f);
  void handle(const protocol::PingFrame& f);
  void handle(const protocol::RefreshFrame& f);
  void handle(const protocol::UnusableFrame& f);
  void send_frame(std::string text);
  void close(CloseReason reason, std::string text = {});
  void arm_liveness(std::chrono::milliseconds liveness_due);
  std::chrono::milliseconds next_liveness_check() const;
  std::int64_t token_deadline_ms() const;
  void window_shrank(std::size_t left);
  void cursor_advanced();
  double unit_random();
  std::shared_ptr<Connection> self_ptr() { return std::static_pointer_cast<Connection>(shared_from_this()); }
  std::weak_ptr<Connection> weak_self() { return self_ptr(); }

  // Every idle connection holds what is below: keep it small (each member
  // counts in docs/benchmarks.md "connect"; with the session and the
  // shared_ptr's counts the object is 384 bytes, a jemalloc size class).
  GatewayContext& ctx_;
  // Who: fixed for the connection's life, read from any thread.
  const std::string user_;
  const std::string device_;
  const ConnId conn_id_;
  ConnectionLimits::Ticket limits_ticket_;  // given back in on_closed
  const hub::AttemptId attempt_;
  const std::int64_t connected_at_ms_;
  std::unique_ptr<Opening> opening_;  // until on_open

  delivery::InflightWindow window_;  // from the welcome's resume position on
  TokenCount frame_budget_;  // rate: client_frame_rate()
  SteadyClock::time_point last_activity_;
  SteadyClock::time_point ping_sent_{};
  std::uint32_t token_exp_;  // unix seconds, see clamp_exp()
  // For info() on other threads, beside the flags so that they share one
  // word. cursor_ is also the committed cursor: only this connection's
  // thread writes it.
  std::atomic<std::uint32_t> inflight_{0};
  std::atomic<std::int32_t> rtt_us_{-1};
  // Owner thread only, hence bits.
  bool ping_outstanding_ : 1 = false;
  bool pong_was_asked_ : 1 = false;  // the control frame at hand answers our ping
  bool open_ : 1 = false;
  bool closed_ : 1 = false;
  bool rate_close_posted_ : 1 = false;
  std::atomic<bool> notify_pending_{false};
  std::atomic<bool> closing_{false};
  std::atomic<std::uint64_t> cursor_{0};
  std::atomic<std::uint64_t> last_sent_{0};
};

}  // namespace herald::gateway
