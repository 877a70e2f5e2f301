#pragma once
// What a server process and the kernel's sockets cost, read from /proc: the
// connect scenario reads them for Herald and bench/compare for its peers, so
// that every server is measured the same way.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace herald::bench {

// A "Name:  N kB" field of /proc/PID/<file> (status, smaps_rollup), in kB;
// 0 when the process or the field is absent.
std::uint64_t proc_kb(pid_t pid, const std::string& file, const std::string& field);
// Open file descriptors of a process (/proc/PID/fd).
std::uint64_t proc_open_fds(pid_t pid);
// CPU time a process has used so far, user + system, all its threads
// (/proc/PID/stat utime + stime); 0 when the process is absent.
double proc_cpu_seconds(pid_t pid);

// CPU per delivered message of one fanout run, the server's and the load
// generator's (this process), over the whole run (warm-up and drain
// included): a figure that does not swing with queueing the way latency
// does near saturation, so runs and peers compare at a rate all of them
// hold. Made when the run starts, finish() when it ends; add_values()
// appends server_cpu_us_per_msg (when the server's pid is known) and
// bench_cpu_us_per_msg.
class RunCpu {
 public:
  explicit RunCpu(pid_t server_pid);
  void finish();
  void add_values(std::vector<std::pair<std::string, double>>& values, std::uint64_t received) const;

 private:
  pid_t server_pid_;
  double server_s_;  // CPU seconds used: at the start, then (finish()) during the run
  double self_s_;
};

// The machine's kernel memory that sockets use. Client and server share the
// kernel on loopback, so a connection's two sockets are both in here.
struct KernelSockets {
  std::uint64_t tcp_inuse = 0;      // /proc/net/sockstat TCP inuse: sockets
  std::uint64_t tcp_mem_pages = 0;  // /proc/net/sockstat TCP mem: pages charged to socket buffers
  std::uint64_t slab_kb = 0;        // /proc/meminfo Slab: socket, file, epoll objects among all others
};
KernelSockets read_kernel_sockets();

// What a server and the machine's sockets hold at one moment: a baseline
// before the connections and a sample while they are held.
struct MemorySample {
  std::uint64_t rss_kb = 0;   // VmRSS
  std::uint64_t anon_kb = 0;  // smaps_rollup Anonymous
  std::uint64_t fds = 0;
  KernelSockets kernel;
};
// pid 0: the kernel's share only.
MemorySample sample_memory(pid_t pid);

// The connect scenario's memory values, the same for Herald and its peers:
// server_fds, server_rss_baseline_mib, server_rss_mib,
// rss_bytes_per_connection, anon_bytes_per_connection (when the server was
// measured), then kernel_tcp_sockets_added, kernel_tcp_mem_bytes_per_connection
// and kernel_slab_bytes_per_connection (both sockets of each loopback
// connection, client's and server's, are in these).
void add_memory_values(std::vector<std::pair<std::string, double>>& values, const MemorySample& baseline,
                       const MemorySample& held, double connections, bool server_measured);

}  // namespace herald::bench
