// Test stub (see xrt_device.h).
#pragma once
#include <cstddef>
#include "xrt/xrt_device.h"

namespace xrt {
using memory_group = unsigned int;
class bo {
 public:
  bo(const device& dev, size_t size, memory_group grp);
  void write(const void* src);
  void read(void* dst);
  void sync(xclBOSyncDirection dir);
};
}  // namespace xrt
