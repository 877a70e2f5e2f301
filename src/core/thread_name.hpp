#pragma once
// Names the calling thread (at most 15 bytes shown), so that top -H, perf
// and gdb tell the I/O threads, the store worker and the housekeeper apart.
#include <pthread.h>

#include <string>

namespace herald {

inline void set_thread_name(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace herald
