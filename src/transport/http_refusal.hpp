#pragma once
// The answer to a connection accepted beyond max_http_connections: a 429
// with a JSON error and Retry-After, then the socket is closed. What the
// client already sent is read and dropped first (for up to a second), so
// that closing does not reset the connection before it read the answer.
// Holds a few hundred bytes while it lives; no HttpSession is made.
#include "transport/io_worker.hpp"

namespace herald::transport {

void refuse_http_connection(TcpSocket socket);

}  // namespace herald::transport
