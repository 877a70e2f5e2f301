#include "testing/fake_herald_server.hpp"

#include <algorithm>
#include <set>

#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "protocol/frame_codec.hpp"

namespace herald::sdk::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

protocol::WelcomeFrame make_welcome(std::string epoch, std::uint64_t resume_from,
                                    std::int64_t heartbeat_ms) {
  protocol::WelcomeFrame w;
  w.conn_id = "c-test";
  w.user = "u1";
  w.device = "d1";
  w.epoch = std::move(epoch);
  w.head_seq = resume_from > 0 ? resume_from - 1 : 0;
  w.resume_from = resume_from;
  w.recovered = true;
  w.heartbeat_ms = heartbeat_ms;
  w.idle_timeout_ms = 75000;
  w.max_inflight = 64;
  w.server_time = 1764000000000;
  return w;
}

// ---- FakeConnection -------------------------------------------------------------

FakeConnection::FakeConnection(tcp::socket socket) : ws(std::move(socket)) {}

void FakeConnection::send(std::string text) {
  if (ended) return;
  out_.emplace_back(std::move(text));
  if (!writing_) do_write();
}

void FakeConnection::send_welcome(const protocol::WelcomeFrame& w) { send(protocol::encode(w)); }

void FakeConnection::send_msg(std::uint64_t seq, std::uint32_t attempt, std::string data_json) {
  protocol::MsgFrame m;
  m.seq = seq;
  m.id = "m-" + std::to_string(seq);
  m.event = "test.event";
  m.data_json = std::move(data_json);
  m.ts = 1764000000000 + static_cast<std::int64_t>(seq);
  m.attempt = attempt;
  m.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  sent_seqs.push_back(seq);
  send(protocol::encode(m));
}

void FakeConnection::close(int code, std::string reason) {
  if (ended) return;
  out_.emplace_back(CloseRequest{code, std::move(reason)});
  if (!writing_) do_write();
}

void FakeConnection::drop() {
  beast::error_code ignored;
  beast::get_lowest_layer(ws).socket().close(ignored);
  ended = true;
}

void FakeConnection::close_and_vanish(int code, std::string_view reason) {
  if (ended) return;
  // RFC 6455 5.5.1: unmasked from a server, a 2-byte code then the reason.
  std::string frame;
  frame.push_back(static_cast<char>(0x88));
  frame.push_back(static_cast<char>(2 + reason.size()));
  frame.push_back(static_cast<char>((code >> 8) & 0xff));
  frame.push_back(static_cast<char>(code & 0xff));
  frame.append(reason);
  beast::error_code ignored;
  asio::write(beast::get_lowest_layer(ws).socket(), asio::buffer(frame), ignored);
  drop();
}

void FakeConnection::do_write() {
  if (out_.empty() || ended) return;
  writing_ = true;
  auto self = shared_from_this();
  if (auto* close = std::get_if<CloseRequest>(&out_.front())) {
    websocket::close_reason cr(static_cast<websocket::close_code>(close->code), close->reason);
    out_.clear();
    ws.async_close(cr, [self](const beast::error_code&) { self->writing_ = false; });
    return;
  }
  ws.async_write(asio::buffer(std::get<std::string>(out_.front())),
                 [self](const beast::error_code& ec, std::size_t) {
                   self->writing_ = false;
                   if (ec) return;
                   self->out_.pop_front();
                   self->do_write();
                 });
}

void FakeConnection::start_read() {
  ws.async_read(buffer_, [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
    if (ec) {
      if (ec == websocket::error::closed) self->client_close_code = self->ws.reason().code;
      self->ended = true;
      return;
    }
    std::string text = beast::buffers_to_string(self->buffer_.data());
    self->buffer_.consume(self->buffer_.size());
    self->received.push_back(text);
    if (self->answer_pings) {
      auto frame = protocol::decode_client_frame(text);
      if (frame) {
        if (auto* ping = std::get_if<protocol::PingFrame>(&*frame)) {
          self->send(protocol::encode(protocol::PongFrame{ping->id_json, ping->ts_json, 1764000000000}));
        }
      }
    }
    if (!self->stop_reading) self->start_read();
  });
}

std::vector<std::uint64_t> FakeConnection::acked_seqs() const {
  std::vector<std::uint64_t> out;
  for (const auto& text : received) {
    auto frame = protocol::decode_client_frame(text);
    if (!frame) continue;
    if (auto* ack = std::get_if<protocol::AckFrame>(&*frame); ack != nullptr && ack->seq) {
      out.push_back(*ack->seq);
    }
  }
  return out;
}

std::vector<std::uint64_t> FakeConnection::acked_upto() const {
  std::vector<std::uint64_t> out;
  for (const auto& text : received) {
    auto frame = protocol::decode_client_frame(text);
    if (!frame) continue;
    if (auto* ack = std::get_if<protocol::AckFrame>(&*frame); ack != nullptr && ack->upto) {
      out.push_back(*ack->upto);
    }
  }
  return out;
}

std::vector<std::uint64_t> FakeConnection::acknowledged() const {
  std::vector<std::uint64_t> out;
  std::set<std::uint64_t> seen;
  auto add = [&](std::uint64_t seq) {
    if (seen.insert(seq).second) out.push_back(seq);
  };
  std::vector<std::uint64_t> sent = sent_seqs;
  std::sort(sent.begin(), sent.end());
  for (const auto& text : received) {
    auto frame = protocol::decode_client_frame(text);
    if (!frame) continue;
    auto* ack = std::get_if<protocol::AckFrame>(&*frame);
    if (ack == nullptr) continue;
    if (ack->seq) add(*ack->seq);
    if (ack->upto) {
      for (auto seq : sent) {
        if (seq <= *ack->upto) add(seq);
      }
    }
  }
  return out;
}

std::vector<protocol::PingFrame> FakeConnection::pings() const {
  std::vector<protocol::PingFrame> out;
  for (const auto& text : received) {
    auto frame = protocol::decode_client_frame(text);
    if (!frame) continue;
    if (auto* ping = std::get_if<protocol::PingFrame>(&*frame)) out.push_back(*ping);
  }
  return out;
}

// ---- FakeHeraldServer -----------------------------------------------------------

struct FakeHeraldServer::Pending {
  explicit Pending(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
};

FakeHeraldServer::FakeHeraldServer(asio::io_context& ioc)
    : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  do_accept();
}

FakeHeraldServer::~FakeHeraldServer() { stop(); }

std::string FakeHeraldServer::url() const {
  return "ws://127.0.0.1:" + std::to_string(port_) + "/v1/ws";
}

void FakeHeraldServer::refuse_next(int status, std::string body, int count,
                                   std::optional<int> retry_after_seconds) {
  refuse_status_ = status;
  refuse_body_ = std::move(body);
  refuse_count_ = count;
  refuse_retry_after_ = retry_after_seconds;
}

void FakeHeraldServer::stop() {
  beast::error_code ignored;
  acceptor_.close(ignored);
  for (auto& c : connections) c->drop();
}

void FakeHeraldServer::do_accept() {
  acceptor_.async_accept([this](const beast::error_code& ec, tcp::socket socket) {
    if (ec) return;  // closed by stop()
    auto pending = std::make_shared<Pending>(std::move(socket));
    http::async_read(pending->stream, pending->buffer, pending->request,
                     [this, pending](const beast::error_code& e, std::size_t) {
                       if (!e) on_request(pending);
                     });
    do_accept();
  });
}

void FakeHeraldServer::on_request(const std::shared_ptr<Pending>& pending) {
  const auto& req = pending->request;
  if (refuse_count_ > 0) {
    --refuse_count_;
    ++refused;
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(refuse_status_), 11);
    res->set(http::field::content_type, "application/json");
    if (refuse_retry_after_) res->set(http::field::retry_after, std::to_string(*refuse_retry_after_));
    res->body() = refuse_body_;
    res->keep_alive(false);
    res->prepare_payload();
    http::async_write(pending->stream, *res, [pending, res](const beast::error_code&, std::size_t) {
      beast::error_code ignored;
      pending->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
    return;
  }
  auto conn = std::make_shared<FakeConnection>(pending->stream.release_socket());
  conn->target = std::string(req.target());
  if (auto u = boost::urls::parse_origin_form(conn->target)) {
    for (const auto& p : u->params()) conn->query[p.key] = p.value;
  }
  conn->authorization = std::string(req[http::field::authorization]);
  conn->subprotocol = std::string(req[http::field::sec_websocket_protocol]);
  const std::string sub = conn->subprotocol;
  conn->ws.set_option(websocket::stream_base::decorator([sub](websocket::response_type& res) {
    if (!sub.empty()) res.set(http::field::sec_websocket_protocol, "herald.v1");
  }));
  // Leftover bytes after the request would be WebSocket frames; a client waits for
  // the 101 first, so there are none.
  conn->ws.async_accept(req, [this, conn](const beast::error_code& ec) {
    if (ec) return;
    conn->ws.text(true);
    connections.push_back(conn);
    conn->start_read();
    if (on_open) on_open(*conn);
  });
}

}  // namespace herald::sdk::testing
