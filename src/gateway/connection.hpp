#pragma once
// One device's live WebSocket: the protocol of PROTOCOL.md 3-5 on top of a
// transport::WsSession. Sends the welcome, delivers the inbox from the
// resume position through an inflight window, retries unacked messages with
// backoff, tracks acks into the cursor, answers pings and refreshes, and
// closes on idle, token expiry, rate abuse or slow consumption.
//
// Owned by its I/O worker: WsHandler callbacks run there; LiveConnection
// calls from other threads post to it.
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/token_bucket.hpp"
#include "delivery/inflight_window.hpp"
#include "delivery/resume_position.hpp"
#include "gateway/gateway_context.hpp"
#include "hub/live_connection.hpp"
#include "protocol/frames.hpp"
#include "transport/ws_session.hpp"

namespace herald::gateway {

struct ConnectionParams {
  std::string user;
  std::string device;
  std::string conn_id;
  std::string remote_ip;
  std::int64_t token_exp = 0;  // unix seconds
  delivery::ResumeRequest resume;
  hub::AttemptId attempt;  // ?attempt=, see hub::AttemptId
};

class Connection final : public transport::WsHandler,
                         public hub::LiveConnection,
                         public std::enable_shared_from_this<Connection> {
 public:
  Connection(GatewayContext& ctx, transport::IoWorker& worker, ConnectionParams params);
  ~Connection() override;

  // transport::WsHandler (owner thread)
  void on_open(const std::shared_ptr<transport::WsSession>& session) override;
  void on_text(std::string_view text) override;
  void on_activity() override;
  void on_pong() override;
  void on_closed(CloseReason reason) override;

  // hub::LiveConnection (any thread)
  void notify() override;
  void kick(CloseReason reason) override;
  hub::ConnectionInfo info() const override;
  const std::string& device() const override { return params_.device; }
  hub::AttemptId attempt() const override { return params_.attempt; }
  const std::string& user() const { return params_.user; }

  // The connection of the same device this one replaces (4011). Its cursor
  // may still wait in another worker's flusher: the welcome takes it as a
  // floor so that the device's cursor does not step back. Owner thread,
  // before on_open.
  void set_replaced(std::weak_ptr<hub::LiveConnection> replaced) { replaced_ = std::move(replaced); }

 private:
  void send_welcome();
  void pump();
  void send_attempt(delivery::InflightEntry& entry);
  void on_retry_due(std::uint64_t seq);
  void handle(const protocol::AckFrame& f);
  bool acks_inflight(const protocol::AckFrame& f);
  void handle(const protocol::PingFrame& f);
  void handle(const protocol::RefreshFrame& f);
  void handle(const protocol::UnusableFrame& f);
  void send_frame(std::string text);
  void close(CloseReason reason, std::string text = {});
  void arm_timer(std::chrono::milliseconds liveness_due);
  void on_timer();
  std::chrono::milliseconds next_liveness_check() const;
  std::int64_t token_deadline_ms() const;
  void cursor_advanced();
  double unit_random();

  GatewayContext& ctx_;
  transport::IoWorker& worker_;
  const ConnectionParams params_;
  const std::int64_t connected_at_ms_;
  std::shared_ptr<transport::WsSession> session_;

  std::optional<delivery::InflightWindow> window_;
  std::int64_t token_exp_;
  TokenBucket frame_rate_;
  SteadyClock::time_point last_activity_;
  SteadyClock::time_point ping_sent_{};
  timers::TimerId timer_;  // liveness and token expiry, see arm_timer()
  // Flags side by side: every connection pays for padding between them.
  bool ping_outstanding_ = false;
  bool open_ = false;
  bool closed_ = false;
  std::atomic<bool> notify_pending_{false};
  std::atomic<bool> closing_{false};
  // Asked before the upgrade finished (rare): held apart, not inline.
  std::unique_ptr<std::pair<CloseReason, std::string>> pending_close_;
  std::uint64_t committed_cursor_ = 0;
  std::weak_ptr<hub::LiveConnection> replaced_;  // see set_replaced()

  std::atomic<std::int64_t> rtt_us_{-1};
  std::atomic<std::uint64_t> cursor_{0};
  std::atomic<std::uint64_t> inflight_{0};
  std::atomic<std::uint64_t> last_sent_{0};
};

}  // namespace herald::gateway
