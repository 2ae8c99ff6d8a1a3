// Test stub (see xrt_device.h).
#pragma once
#include <string>
#include "xrt/xrt_bo.h"

namespace xrt {
class run {
 public:
  void wait();
};
class kernel {
 public:
  kernel(const device& dev, const uuid& xclbin_id, const std::string& name);
  memory_group group_id(int argno) const;
  template <typename... Args>
  run operator()(Args&&... args);
};
}  // namespace xrt
