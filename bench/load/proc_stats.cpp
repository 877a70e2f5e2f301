#include "proc_stats.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace herald::bench {

std::uint64_t proc_kb(pid_t pid, const std::string& file, const std::string& field) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  while (std::getline(f, line)) {
    if (line.size() > field.size() && line.starts_with(field) && line[field.size()] == ':') {
      std::istringstream in(line.substr(field.size() + 1));
      std::uint64_t kb = 0;
      in >> kb;
      return kb;
    }
  }
  return 0;
}

std::uint64_t proc_open_fds(pid_t pid) {
  if (pid <= 0) return 0;
  std::error_code ec;
  std::uint64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n;
}

double proc_cpu_seconds(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  // The command name (field 2) may hold spaces and parentheses: the fields
  // counted from after its closing ')' start at field 3, the state.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(line.substr(close + 1));
  std::string field;
  double utime = 0, stime = 0;
  for (int n = 3; n <= 15 && in >> field; ++n) {
    if (n == 14) utime = std::stod(field);
    if (n == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

RunCpu::RunCpu(pid_t server_pid)
    : server_pid_(server_pid), server_s_(proc_cpu_seconds(server_pid)), self_s_(proc_cpu_seconds(::getpid())) {}

void RunCpu::finish() {
  server_s_ = proc_cpu_seconds(server_pid_) - server_s_;
  self_s_ = proc_cpu_seconds(::getpid()) - self_s_;
}

void RunCpu::add_values(std::vector<std::pair<std::string, double>>& values, std::uint64_t received) const {
  if (received == 0) return;
  const auto per_msg_us = [&](double seconds) { return seconds * 1e6 / static_cast<double>(received); };
  if (server_pid_ > 0) values.emplace_back("server_cpu_us_per_msg", per_msg_us(server_s_));
  values.emplace_back("bench_cpu_us_per_msg", per_msg_us(self_s_));
}

KernelSockets read_kernel_sockets() {
  KernelSockets k;
  std::ifstream sockstat("/proc/net/sockstat");
  std::string line;
  while (std::getline(sockstat, line)) {
    if (!line.starts_with("TCP:")) continue;
    std::istringstream in(line.substr(4));
    std::string key;
    std::uint64_t v = 0;
    while (in >> key >> v) {
      if (key == "inuse") k.tcp_inuse = v;
      if (key == "mem") k.tcp_mem_pages = v;
    }
  }
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    if (line.starts_with("Slab:")) std::istringstream(line.substr(5)) >> k.slab_kb;
  }
  return k;
}

MemorySample sample_memory(pid_t pid) {
  MemorySample m;
  m.rss_kb = proc_kb(pid, "status", "VmRSS");
  m.anon_kb = proc_kb(pid, "smaps_rollup", "Anonymous");
  m.fds = proc_open_fds(pid);
  m.kernel = read_kernel_sockets();
  return m;
}

void add_memory_values(std::vector<std::pair<std::string, double>>& values, const MemorySample& baseline,
                       const MemorySample& held, double connections, bool server_measured) {
  const double per_conn = connections > 0 ? 1.0 / connections : 0;
  auto delta = [](std::uint64_t after, std::uint64_t before) {
    return static_cast<double>(after) - static_cast<double>(before);
  };
  if (server_measured) {
    values.emplace_back("server_fds", static_cast<double>(held.fds));
    values.emplace_back("server_rss_baseline_mib", static_cast<double>(baseline.rss_kb) / 1024.0);
    values.emplace_back("server_rss_mib", static_cast<double>(held.rss_kb) / 1024.0);
    values.emplace_back("rss_bytes_per_connection", delta(held.rss_kb, baseline.rss_kb) * 1024.0 * per_conn);
    values.emplace_back("anon_bytes_per_connection", delta(held.anon_kb, baseline.anon_kb) * 1024.0 * per_conn);
  }
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  values.emplace_back("kernel_tcp_sockets_added", delta(held.kernel.tcp_inuse, baseline.kernel.tcp_inuse));
  values.emplace_back("kernel_tcp_mem_bytes_per_connection",
                      delta(held.kernel.tcp_mem_pages, baseline.kernel.tcp_mem_pages) * page * per_conn);
  values.emplace_back("kernel_slab_bytes_per_connection",
                      delta(held.kernel.slab_kb, baseline.kernel.slab_kb) * 1024.0 * per_conn);
}

}  // namespace herald::bench
