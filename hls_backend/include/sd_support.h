// sd_support.h -- small helpers of streamdsl-generated kernels (used by Vitis and by g++ csim).
#ifndef SD_SUPPORT_H
#define SD_SUPPORT_H

#include <cmath>
#include <cstdio>
#include <cstdlib>

// Dataflow processes: a plain call for Vitis HLS and sequential csim (processes run in call
// order), one thread each in threaded csim (-DSD_CSIM_THREADED), joined at SD_DATAFLOW_END.
// BEGIN and END take no semicolon, so nothing but the calls is left in the region for Vitis.
#ifdef SD_CSIM_THREADED
#define SD_DATAFLOW_BEGIN() ::sd_csim::Region sd_region_;
#define SD_DATAFLOW_PROCESS(fn, ...) sd_region_.spawn(#fn, [&]() { fn(__VA_ARGS__); })
#define SD_DATAFLOW_END() sd_region_.join();
#else
#define SD_DATAFLOW_BEGIN()
#define SD_DATAFLOW_PROCESS(fn, ...) fn(__VA_ARGS__)
#define SD_DATAFLOW_END()
#endif

// A polling process (non-blocking empty()/full()) ends each loop iteration with SD_POLL: nothing
// for Vitis; in sequential csim no progress means it can never progress (its producer already
// ran), an error; in threaded csim it yields and counts as blocked for the deadlock watchdog.
#if defined(SD_CSIM_THREADED)
#define SD_POLL(moved, in, out) ::sd_csim::poll((moved), (in).name(), (out).name())
#elif defined(__SYNTHESIS__)
#define SD_POLL(moved, in, out) (void)0
#else
#define SD_POLL(moved, in, out)                                                                  \
  do {                                                                                            \
    if (!(moved)) {                                                                               \
      std::fprintf(stderr, "ERROR: %s cannot progress: its input ended early or its producer has " \
                   "not run (sequential csim runs processes in call order)\n", __func__);         \
      std::exit(2);                                                                               \
    }                                                                                             \
  } while (0)
#endif

// arith.maximumf / minimumf propagate NaN (std::fmax / fmin would drop it).
template <class T>
inline T sd_maximum(T a, T b) {
  return (std::isnan(a) || std::isnan(b)) ? a + b : (a > b ? a : b);
}
template <class T>
inline T sd_minimum(T a, T b) {
  return (std::isnan(a) || std::isnan(b)) ? a + b : (a < b ? a : b);
}
template <class T>
inline T sd_rsqrt(T x) {
  return T(1) / std::sqrt(x);
}
template <class T>
inline T sd_floordiv(T a, T b) {
  T q = a / b;
  return (q * b != a && ((a < 0) != (b < 0))) ? q - 1 : q;
}

#endif  // SD_SUPPORT_H
