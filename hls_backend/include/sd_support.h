// sd_support.h -- small helpers of streamdsl-generated kernels (used by Vitis and by g++ csim).
#ifndef SD_SUPPORT_H
#define SD_SUPPORT_H

#include <ap_int.h>

#include "sd_fp16.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

// Dataflow processes: a plain call for Vitis HLS and sequential csim (processes run in call
// order), one thread each in threaded csim (-DSD_CSIM_THREADED), joined at SD_DATAFLOW_END.
// BEGIN and END take no semicolon, so nothing but the calls is left in the region for Vitis.
#ifdef SD_CSIM_THREADED
#define SD_DATAFLOW_BEGIN() ::sd_csim::Region sd_region_;
#define SD_DATAFLOW_PROCESS(fn, ...) sd_region_.spawn(#fn, [&]() { fn(__VA_ARGS__); })
#define SD_DATAFLOW_END() sd_region_.join();
#elif defined(SD_HLS_STREAM_H) && !defined(__SYNTHESIS__) && defined(SD_CSIM_FEEDBACK)  // sequential, feedback
#define SD_DATAFLOW_BEGIN()
#define SD_DATAFLOW_PROCESS(fn, ...) ::sd_csim::Baton::get().spawn(#fn, [&]() { fn(__VA_ARGS__); })
#define SD_DATAFLOW_END() ::sd_csim::Baton::get().run(); ::sd_csim::report_cycles();
#elif defined(SD_HLS_STREAM_H) && !defined(__SYNTHESIS__)  // our sequential csim: cycle estimate
#define SD_DATAFLOW_BEGIN()
#define SD_DATAFLOW_PROCESS(fn, ...) ::sd_csim::process(#fn, [&]() { fn(__VA_ARGS__); })
#define SD_DATAFLOW_END() ::sd_csim::report_cycles();
#else
#define SD_DATAFLOW_BEGIN()
#define SD_DATAFLOW_PROCESS(fn, ...) fn(__VA_ARGS__)
#define SD_DATAFLOW_END()
#endif

// Cycle counters (compiled out for Vitis and in threaded csim): SD_II(n) at the top of every
// pipelined iteration, SD_DEPTH(d) after a pipelined loop (once per entry: its depth less the II
// already counted for the last iteration, so N iterations cost (N - 1) * II + depth), and
// SD_LOOP_ENTRY() per iteration of a loop that is not pipelined; SD_DEPTH(d) alone is the
// latency of straight-line tile work. SD_LAG(d): beats written from now on leave d cycles late
// (the rest of their iteration's pipeline). SD_HBM(bits, per_cycle): a DMA's word waits for its
// HBM pseudo-channel, which moves fewer bits per cycle than the 512-bit port.
#if defined(SD_HLS_STREAM_H) && !defined(SD_CSIM_THREADED) && !defined(__SYNTHESIS__)
#define SD_II(n) ::sd_csim::iteration(n)
#define SD_DEPTH(d) ::sd_csim::tick(d)
#define SD_LOOP_ENTRY() ::sd_csim::tick(1)
#define SD_LAG(d) ::sd_csim::lag(d)
#define SD_HBM(bits, per_cycle) ::sd_csim::hbm(bits, per_cycle)
#else
#define SD_II(n) (void)0
#define SD_DEPTH(d) (void)0
#define SD_LOOP_ENTRY() (void)0
#define SD_LAG(d) (void)0
#define SD_HBM(bits, per_cycle) (void)0
#endif

// A polling process (non-blocking empty()/full()) ends each loop iteration with SD_POLL: nothing
// for Vitis; in sequential csim no progress means it can never progress (its producer already
// ran), an error; in threaded csim it yields and counts as blocked for the deadlock watchdog.
#if defined(SD_CSIM_THREADED)
#define SD_POLL(moved, in, out) ::sd_csim::poll((moved), (in).name(), (out).name())
#elif defined(__SYNTHESIS__)
#define SD_POLL(moved, in, out) (void)0
#elif defined(SD_CSIM_FEEDBACK)  // sequential with feedback: wait for the input's next write
#define SD_POLL(moved, in, out)                                        \
  do {                                                                  \
    if (!(moved)) ::sd_csim::Baton::get().wait_for(&(in), (in).name()); \
  } while (0)
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

// arith.maximumf / minimumf propagate NaN (std::fmax / fmin would drop it) by compares and selects
// alone: no adder in a max-reduction's loop-carried path (its II is maximumf's latency, not fadd's).
template <class T>
inline T sd_maximum(T a, T b) {
  return std::isnan(a) ? a : std::isnan(b) ? b : (a > b ? a : b);
}
template <class T>
inline T sd_minimum(T a, T b) {
  return std::isnan(a) ? a : std::isnan(b) ? b : (a < b ? a : b);
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

// Unsigned arith ops on values stored in signed C++ types: read the bits as unsigned.
template <class T>
using sd_unsigned = typename std::make_unsigned<T>::type;
template <class T>
inline T sd_divui(T a, T b) {
  return T(sd_unsigned<T>(a) / sd_unsigned<T>(b));
}
template <class T>
inline T sd_remui(T a, T b) {
  return T(sd_unsigned<T>(a) % sd_unsigned<T>(b));
}
template <class T>
inline T sd_ceildivui(T a, T b) {
  return T((sd_unsigned<T>(a) + sd_unsigned<T>(b) - 1) / sd_unsigned<T>(b));
}
template <class T>
inline T sd_shrui(T a, T b) {
  return T(sd_unsigned<T>(a) >> b);
}
template <class T>
inline T sd_maxui(T a, T b) {
  return sd_unsigned<T>(a) > sd_unsigned<T>(b) ? a : b;
}
template <class T>
inline T sd_minui(T a, T b) {
  return sd_unsigned<T>(a) < sd_unsigned<T>(b) ? a : b;
}
template <class T>
inline bool sd_ult(T a, T b) {
  return sd_unsigned<T>(a) < sd_unsigned<T>(b);
}
template <class T>
inline bool sd_ule(T a, T b) {
  return sd_unsigned<T>(a) <= sd_unsigned<T>(b);
}
template <class T>
inline bool sd_ugt(T a, T b) {
  return sd_unsigned<T>(a) > sd_unsigned<T>(b);
}
template <class T>
inline bool sd_uge(T a, T b) {
  return sd_unsigned<T>(a) >= sd_unsigned<T>(b);
}
// math.ipowi: x^n by squaring; a negative n gives 0 except for x = 1 and x = -1.
template <class T>
inline T sd_ipowi(T x, T n) {
  if (n < 0) return x == 1 ? T(1) : x == -1 ? (n % 2 == 0 ? T(1) : T(-1)) : T(0);
  T result = 1;
  for (; n > 0; n >>= 1, x *= x) {
    if (n & 1) result *= x;
  }
  return result;
}
// arith.bitcast: the same bits read as another type of the same width.
template <class To, class From>
inline To sd_bitcast(From x) {
  static_assert(sizeof(To) == sizeof(From), "arith.bitcast needs types of one width");
  To out;
  std::memcpy(&out, &x, sizeof(To));
  return out;
}

// Lane `lane` of a 512-bit HBM word holding elements of T (hls_backend/hbm.py): bits
// [lane * w, lane * w + w) with w = the width of T, the element's bits as they are in memory.
template <int Bytes>
struct sd_uint_of;
template <>
struct sd_uint_of<1> { typedef uint8_t type; };
template <>
struct sd_uint_of<2> { typedef uint16_t type; };
template <>
struct sd_uint_of<4> { typedef uint32_t type; };
template <>
struct sd_uint_of<8> { typedef uint64_t type; };

template <class T>
struct sd_lanes {  // a C++ scalar: its bytes as they are in memory
  typedef typename sd_uint_of<sizeof(T)>::type bits_t;
  static const int w = sizeof(T) * 8;
  static T get(const ap_uint<512>& word, int lane) {
    return sd_bitcast<T>(bits_t(word.range(lane * w + w - 1, lane * w).to_uint64()));
  }
  static void set(ap_uint<512>& word, int lane, T value) {
    word.range(lane * w + w - 1, lane * w) = uint64_t(sd_bitcast<bits_t>(value));
  }
};
template <int W>
struct sd_lanes<ap_int<W> > {  // i4: W bits, two's complement
  static ap_int<W> get(const ap_uint<512>& word, int lane) {
    ap_int<W> value;
    value.range(W - 1, 0) = word.range(lane * W + W - 1, lane * W);
    return value;
  }
  static void set(ap_uint<512>& word, int lane, ap_int<W> value) {
    word.range(lane * W + W - 1, lane * W) = value.range(W - 1, 0);
  }
};
template <class T>
inline T sd_lane(const ap_uint<512>& word, int lane) {
  return sd_lanes<T>::get(word, lane);
}
template <class T>
inline void sd_set_lane(ap_uint<512>& word, int lane, T value) {
  sd_lanes<T>::set(word, lane, value);
}

#endif  // SD_SUPPORT_H
