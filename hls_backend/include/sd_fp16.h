// sd_fp16.h -- 16-bit floats of streamdsl-generated code: f16 (IEEE binary16) and bf16 (the upper
// half of a float32). Plain C++ (bit operations only), used by the kernel (sd_support.h), the
// testbench and the host (sd_hbm.h). Values are stored as 16 bits and computed in float: every
// operation converts to float, and storing the result rounds it to nearest even, as the simulators
// do (numpy float16 and streamdsl's bf16 rounding).
#ifndef SD_FP16_H
#define SD_FP16_H

#include <cstdint>
#include <cstring>
#include <type_traits>

inline uint32_t sd_f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float sd_f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t sd_bf16_bits(float f) {
  const uint32_t u = sd_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN stays NaN (quiet)
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float sd_bf16_value(uint16_t b) { return sd_f32_from_bits(uint32_t(b) << 16); }

inline uint16_t sd_f16_bits(float f) {
  const uint32_t u = sd_f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to or beyond 65520: infinity
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): a subnormal, in units of 2^-24
    const float scaled = sd_f32_from_bits(abs) * 16777216.0f;  // exact: a power of two
    uint32_t units = uint32_t(scaled);
    const float rest = scaled - float(units);
    if (rest > 0.5f || (rest == 0.5f && (units & 1u))) ++units;  // nearest even (1024 is the smallest normal)
    return uint16_t(sign | units);
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);  // nearest even at the 13 dropped bits
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}
inline float sd_f16_value(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return sd_f32_from_bits(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {  // subnormal: mant x 2^-24
    const float v = float(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return sd_f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

// One class per format: 16 bits of storage, a float to compute with.
#define SD_FP16_TYPE(NAME, TO_BITS, TO_FLOAT)                                                   \
  struct NAME {                                                                                 \
    uint16_t bits;                                                                              \
    NAME() = default;                                                                           \
    template <class T, class = typename std::enable_if<std::is_arithmetic<T>::value>::type>     \
    NAME(T value) : bits(TO_BITS(float(value))) {}                                              \
    operator float() const { return TO_FLOAT(bits); }                                           \
  };
SD_FP16_TYPE(sd_f16, sd_f16_bits, sd_f16_value)
SD_FP16_TYPE(sd_bf16, sd_bf16_bits, sd_bf16_value)
#undef SD_FP16_TYPE

#endif  // SD_FP16_H
