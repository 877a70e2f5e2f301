#pragma once
// The stream under Beast's websocket::stream in a WsSession: a view of a TCP
// socket that the session owns, so that the Beast stream (about 2.5 KB of
// state per connection) can be destroyed while the connection is idle and
// rebuilt when it wakes. This is "parking", see WsSession.
//
// What the adapter adds to the socket:
//  - It notes whether Beast's pending read is a wait for the next frame
//    header with nothing of a frame buffered (Beast asks for its whole
//    1536-byte frame buffer only when that buffer is empty). Only then can
//    the stream be dropped without losing bytes it already read.
//  - It can swallow writes, so that a rebuilt stream is brought to the open
//    state by Beast's own accept() of a stock upgrade request whose 101
//    answer goes nowhere (Beast has no other public way to open a stream).
#include <cstddef>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "transport/io_worker.hpp"

namespace herald::transport {

// The socket and what the adapter tracks about Beast's use of it. Owned by
// the session; outlives every Beast stream built on it.
struct SocketSlot {
  explicit SocketSlot(TcpSocket s) : socket(std::move(s)) {}

  TcpSocket socket;
  bool frame_wait = false;      // the pending read waits for a frame header, Beast's buffer empty
  bool swallow_writes = false;  // writes succeed without touching the socket
};

class ParkableSocket {
 public:
  using executor_type = TcpSocket::executor_type;

  // Beast's websocket::stream<>::tcp_frame_size (private there): the size
  // of its read buffer, asked for in full only when the buffer is empty.
  static constexpr std::size_t kBeastFrameBuffer = 1536;

  explicit ParkableSocket(SocketSlot& slot) : slot_(&slot) {}

  executor_type get_executor() { return slot_->socket.get_executor(); }
  SocketSlot& slot() { return *slot_; }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    slot_->frame_wait = boost::asio::buffer_size(buffers) == kBeastFrameBuffer;
    slot_->socket.async_read_some(
        buffers, [slot = slot_, h = std::forward<Handler>(handler)](boost::system::error_code ec,
                                                                    std::size_t n) mutable {
          slot->frame_wait = false;
          std::move(h)(ec, n);
        });
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    slot_->socket.async_write_some(buffers, std::forward<Handler>(handler));
  }

  // Synchronous calls: only Beast's accept() of a rebuilt stream writes this
  // way, with swallow_writes set. Reads are never synchronous.
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
    return slot_->socket.read_some(buffers, ec);
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    return slot_->socket.read_some(buffers);
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
    ec = {};
    if (slot_->swallow_writes) return boost::asio::buffer_size(buffers);
    return slot_->socket.write_some(buffers, ec);
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    if (slot_->swallow_writes) return boost::asio::buffer_size(buffers);
    return slot_->socket.write_some(buffers);
  }

 private:
  SocketSlot* slot_;
};

// Beast's customization points, found by argument-dependent lookup: the
// adapter closes and tears down as the socket under it does.
inline void beast_close_socket(ParkableSocket& s) {
  boost::system::error_code ignored;
  s.slot().socket.close(ignored);
}

inline void teardown(boost::beast::role_type role, ParkableSocket& s, boost::system::error_code& ec) {
  boost::beast::websocket::teardown(role, s.slot().socket, ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, ParkableSocket& s, TeardownHandler&& handler) {
  boost::beast::websocket::async_teardown(role, s.slot().socket, std::forward<TeardownHandler>(handler));
}

}  // namespace herald::transport
