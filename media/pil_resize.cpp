// media/pil_resize.cpp: Pillow-exact bilinear resampling (see pil_resize.h for the algorithm and ref).
#include "media/pil_resize.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace llama_mm::media {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // 22: fixed-point bits of the weights (Resample.c PRECISION_BITS)

// Fixed-point weights of one pass: output sample i reads `count[i]` inputs from `first[i]` on, with
// weights k[i * ksize + j].
struct PassCoeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

PassCoeffs precompute_coeffs(int in_size, int out_size) {
  // Pillow passes the source box as float: (float)in_size, exact up to 2^24.
  const double in0 = 0.0, in1 = static_cast<double>(static_cast<float>(in_size));
  const double scale = (in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // bilinear support 1, widened when downscaling
  PassCoeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int i = 0; i < out_size; ++i) {
    const double center = in0 + (i + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);  // truncation, as in C
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = hi - lo;
    double ww = 0.0;
    for (int j = 0; j < n; ++j) {
      w[j] = triangle((j + lo - center + 0.5) * ss);
      ww += w[j];
    }
    for (int j = 0; j < n; ++j) {
      const double v = ww != 0.0 ? w[j] / ww : w[j];
      c.k[static_cast<size_t>(i) * c.ksize + j] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                                                        : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[i] = lo;
    c.count[i] = n;
  }
  return c;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(std::clamp(v, 0, 255));
}

// Horizontal pass over source rows [row0, row0 + rows) of `in`, to width c.first.size().
Image resample_horizontal(const Image& in, int row0, int rows, const PassCoeffs& c) {
  const int out_w = static_cast<int>(c.first.size());
  Image out;
  out.width = out_w;
  out.height = rows;
  out.rgb.resize(static_cast<size_t>(out_w) * rows * 3);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = &in.rgb[static_cast<size_t>(row0 + y) * in.width * 3];
    uint8_t* dst = &out.rgb[static_cast<size_t>(y) * out_w * 3];
    for (int x = 0; x < out_w; ++x) {
      const int32_t* k = &c.k[static_cast<size_t>(x) * c.ksize];
      const uint8_t* p = src + static_cast<size_t>(c.first[x]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int j = 0; j < c.count[x]; ++j, p += 3) {
        s0 += p[0] * k[j];
        s1 += p[1] * k[j];
        s2 += p[2] * k[j];
      }
      dst[x * 3 + 0] = clip8(s0), dst[x * 3 + 1] = clip8(s1), dst[x * 3 + 2] = clip8(s2);
    }
  }
  return out;
}

// Vertical pass; c.first is relative to `in`'s first row.
Image resample_vertical(const Image& in, const PassCoeffs& c) {
  const int out_h = static_cast<int>(c.first.size());
  const size_t row = static_cast<size_t>(in.width) * 3;
  Image out;
  out.width = in.width;
  out.height = out_h;
  out.rgb.resize(row * out_h);
  std::vector<int32_t> acc(row);
  for (int y = 0; y < out_h; ++y) {
    const int32_t* k = &c.k[static_cast<size_t>(y) * c.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int j = 0; j < c.count[y]; ++j) {
      const uint8_t* src = &in.rgb[(c.first[y] + j) * row];
      for (size_t i = 0; i < row; ++i) acc[i] += src[i] * k[j];  // same sums as Pillow's per-pixel loop
    }
    uint8_t* dst = &out.rgb[y * row];
    for (size_t i = 0; i < row; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

Image resize_bilinear_pil(const Image& in, int height, int width) {
  TORCH_CHECK(height > 0 && width > 0, "resize_bilinear_pil: target size must be positive, got ", height, "x", width);
  TORCH_CHECK(in.width > 0 && in.height > 0 && in.rgb.size() == static_cast<size_t>(in.width) * in.height * 3,
              "resize_bilinear_pil: malformed input image ", in.width, "x", in.height, " with ", in.rgb.size(),
              " bytes");
  if (height == in.height && width == in.width) return in;

  const bool need_horizontal = width != in.width, need_vertical = height != in.height;
  PassCoeffs horiz = precompute_coeffs(in.width, width);
  PassCoeffs vert = precompute_coeffs(in.height, height);
  // The horizontal pass only produces the source rows the vertical pass reads.
  const int row_first = vert.first.front();
  const int row_last = vert.first.back() + vert.count.back();

  if (!need_horizontal) return resample_vertical(in, vert);
  for (int& f : vert.first) f -= row_first;
  Image tmp = resample_horizontal(in, row_first, row_last - row_first, horiz);
  return need_vertical ? resample_vertical(tmp, vert) : tmp;
}

}  // namespace llama_mm::media
