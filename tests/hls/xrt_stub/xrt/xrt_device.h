// Test stub: the few XRT native API declarations the generated host.cpp uses (signatures as in
// XRT's public headers), so the host can be syntax-checked without XRT installed.
#pragma once
#include <string>

enum xclBOSyncDirection { XCL_BO_SYNC_BO_TO_DEVICE = 0, XCL_BO_SYNC_BO_FROM_DEVICE = 1 };

namespace xrt {
class uuid {};
class device {
 public:
  explicit device(unsigned int index);
  uuid load_xclbin(const std::string& path);
};
}  // namespace xrt
