// Test stub (see xrt_device.h).
#pragma once
#include <string>
#include "xrt/xrt_bo.h"

// from XRT's ert.h: the states a run ends in (the host checks for COMPLETED)
enum ert_cmd_state {
  ERT_CMD_STATE_NEW = 1,
  ERT_CMD_STATE_QUEUED = 2,
  ERT_CMD_STATE_RUNNING = 3,
  ERT_CMD_STATE_COMPLETED = 4,
  ERT_CMD_STATE_ERROR = 5,
  ERT_CMD_STATE_ABORT = 6,
};

namespace xrt {
class run {
 public:
  ert_cmd_state wait();
};
class kernel {
 public:
  kernel(const device& dev, const uuid& xclbin_id, const std::string& name);
  memory_group group_id(int argno) const;
  template <typename... Args>
  run operator()(Args&&... args);
};
}  // namespace xrt
