#include "runtime/threads.h"

#include <sched.h>

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace nibble {

int default_thread_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    return std::max(1u, std::thread::hardware_concurrency());
  }
  // Count distinct (package, core) pairs among the CPUs we may run on.
  std::set<std::pair<int, int>> cores;
  int allowed = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    ++allowed;
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    int pkg = -1, core = -1;
    std::ifstream(base + "physical_package_id") >> pkg;
    std::ifstream(base + "core_id") >> core;
    if (core < 0) return allowed > 0 ? CPU_COUNT(&set) : 1;  // no topology: count CPUs
    cores.insert({pkg, core});
  }
  return cores.empty() ? std::max(1, allowed) : static_cast<int>(cores.size());
}

}  // namespace nibble
