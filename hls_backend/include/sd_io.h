// sd_io.h -- raw binary tensors for the csim testbench and the XRT host (not kernel code).
#ifndef SD_IO_H
#define SD_IO_H

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace sd_io {

// Read exactly n elements of T from `path` (row-major, little-endian); exit 1 otherwise.
template <class T>
std::vector<T> load(const std::string& path, size_t n) {
  std::vector<T> data(n);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(1);
  }
  const size_t got = std::fread(data.data(), sizeof(T), n, f);
  const bool extra = std::fgetc(f) != EOF;
  std::fclose(f);
  if (got != n || extra) {
    std::fprintf(stderr, "%s: expected %zu elements of %zu bytes\n", path.c_str(), n, sizeof(T));
    std::exit(1);
  }
  return data;
}

template <class T>
void save(const std::string& path, const std::vector<T>& data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data.data(), sizeof(T), data.size(), f) != data.size()) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}

}  // namespace sd_io

#endif  // SD_IO_H
