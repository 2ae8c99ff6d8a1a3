// sd_io.h -- raw binary tensors for the csim testbench and the XRT host (not kernel code).
#ifndef SD_IO_H
#define SD_IO_H

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace sd_io {

// Exit status of a testbench or host whose outputs differ from the expected ones.
constexpr int MISMATCH_EXIT = 4;

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

// Compare `got` with the expected output stored at `path` (if that file exists): every element
// within rtol x max(max |expected|, 1) (0 for integers: exact), NaN where NaN is expected. Prints
// the verdict; returns false on a mismatch, true when it matches or there is nothing to compare.
template <class T>
bool check(const std::string& name, const std::vector<T>& got, const std::string& path, double rtol) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    std::printf("%s: no expected output at %s, not checked\n", name.c_str(), path.c_str());
    return true;
  }
  std::fclose(f);
  const std::vector<T> want = load<T>(path, got.size());
  double scale = 1.0, worst = 0.0;
  size_t at = 0, bad = 0;
  for (size_t i = 0; i < want.size(); ++i) scale = std::fmax(scale, std::fabs(double(want[i])));
  for (size_t i = 0; i < want.size(); ++i) {
    const double w = double(want[i]), g = double(got[i]);
    const double diff = std::isnan(w) || std::isnan(g) ? (std::isnan(w) && std::isnan(g) ? 0.0 : INFINITY) : std::fabs(g - w);
    if (diff > worst) worst = diff, at = i;
    bad += diff > rtol * scale;
  }
  if (bad) {
    std::fprintf(stderr, "MISMATCH %s: %zu of %zu elements off by more than %g (largest %g at flat index %zu: got %g, expected %g)\n",
                 name.c_str(), bad, want.size(), rtol * scale, worst, at, double(got[at]), double(want[at]));
    return false;
  }
  std::printf("PASS %s: %zu elements within %g (largest difference %g)\n", name.c_str(), want.size(), rtol * scale, worst);
  return true;
}

}  // namespace sd_io

#endif  // SD_IO_H
