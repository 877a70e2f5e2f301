#pragma once
// What a server process and the kernel's sockets cost, read from /proc: the
// connect scenario reads them for Herald and bench/compare for its peers, so
// that every server is measured the same way.
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace herald::bench {

// A "Name:  N kB" field of /proc/PID/<file> (status, smaps_rollup), in kB;
// 0 when the process or the field is absent.
std::uint64_t proc_kb(pid_t pid, const std::string& file, const std::string& field);
// Open file descriptors of a process (/proc/PID/fd).
std::uint64_t proc_open_fds(pid_t pid);

// The machine's kernel memory that sockets use. Client and server share the
// kernel on loopback, so a connection's two sockets are both in here.
struct KernelSockets {
  std::uint64_t tcp_inuse = 0;      // /proc/net/sockstat TCP inuse: sockets
  std::uint64_t tcp_mem_pages = 0;  // /proc/net/sockstat TCP mem: pages charged to socket buffers
  std::uint64_t slab_kb = 0;        // /proc/meminfo Slab: socket, file, epoll objects among all others
};
KernelSockets read_kernel_sockets();

}  // namespace herald::bench
