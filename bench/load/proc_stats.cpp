#include "proc_stats.hpp"

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

}  // namespace herald::bench
