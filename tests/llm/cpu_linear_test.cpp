// Tests for llm/cpu_linear.cpp: the small-M bf16 kernel and the widen-then-GEMM path against the naive
// reference, across every row count the kernel takes, odd K (scalar tail) and odd N (tile remainders), poisoned
// outputs, thread counts, bias and 3-D inputs; and a whole greedy generation on the fast path against the reference.
#include "llm/cpu_linear.h"

#include "llm/llm.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace llama_mm {
namespace {

TEST(CpuLinear, MatchesReferenceOnBothPaths) {
  torch::manual_seed(0);
  for (int64_t M : std::initializer_list<int64_t>{1, 3, kBf16KernelMaxRows, kBf16KernelMaxRows + 1, 64})
    for (int64_t K : std::initializer_list<int64_t>{8, 37, 256})
      for (bool with_bias : {false, true}) {
        const int64_t N = 50;
        auto w = torch::randn({N, K}).to(torch::kBFloat16);
        auto b = with_bias ? torch::randn({N}).to(torch::kBFloat16) : torch::Tensor();
        auto x = torch::randn({M, K});
        auto got = linear_bf16_cpu(x, w, b);
        // oneDNN's bf16 GEMM (AVX-512 CPUs, many rows) takes x in bf16 and rounds its output to bf16 (2^-9).
        const bool onednn = M > kBf16KernelMaxRows && bf16_gemm_uses_onednn();
        const auto xin = onednn ? x.to(torch::kBFloat16).to(torch::kFloat32) : x;
        auto want = linear_bf16_reference(xin, w, b);
        ASSERT_EQ(got.sizes(), want.sizes());
        // The rounding is of x·Wᵀ, before the bias is added: the bound scales with |x·Wᵀ|.
        const auto bound = onednn ? linear_bf16_reference(xin, w, {}).abs() / 256 + 1e-3 : want.abs() * 1e-5 + 1e-4;
        EXPECT_TRUE(((got - want).abs() <= bound).all().item<bool>())
            << "M " << M << " K " << K << " bias " << with_bias << " max err " << (got - want).abs().max();
      }
}

// Every M the kernel takes, N covering each tile remainder (4-row and 3-row tiles), K with and without a tail;
// the output starts as NaN so an element the kernel skips fails; 1 and 2 threads must agree bit for bit.
TEST(CpuLinear, SmallMKernelWritesEveryElementAndIsThreadInvariant) {
  torch::manual_seed(1);
  const int saved = at::get_num_threads();
  for (int64_t M = 1; M <= kBf16KernelMaxRows; ++M)
    for (int64_t N : {1, 2, 3, 5, 7, 50, 131})
      for (int64_t K : {8, 13, 40, 257}) {
        auto w = torch::randn({N, K}).to(torch::kBFloat16);
        auto x = torch::randn({M, K});
        auto want = linear_bf16_reference(x, w, {});
        torch::Tensor ys[2];
        for (int t : {1, 2}) {
          at::set_num_threads(t);
          ys[t - 1] = torch::full({M, N}, std::numeric_limits<float>::quiet_NaN());
          linear_bf16_small_m_out(x, w, ys[t - 1]);
        }
        at::set_num_threads(saved);
        const auto err = (ys[0] - want).abs().max().item<float>();  // NaN if an element was skipped
        EXPECT_TRUE(err <= 1e-4f * std::max(1.0f, want.abs().max().item<float>()))
            << "M " << M << " N " << N << " K " << K << " max err " << err;
        EXPECT_TRUE(torch::equal(ys[0], ys[1])) << "threads 1 and 2 differ at M " << M << " N " << N << " K " << K;
      }
}

TEST(CpuLinear, KeepsLeadingDimsAndInputDtype) {
  auto w = torch::randn({16, 32}).to(torch::kBFloat16);
  auto x = torch::randn({2, 3, 32}).to(torch::kBFloat16);
  auto y = linear_bf16_cpu(x, w, {});
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 16}));
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), linear_bf16_reference(x, w, {}).to(torch::kFloat32), 1e-2, 1e-2));
  EXPECT_THROW(linear_bf16_cpu(torch::randn({2, 31}), w, {}), c10::Error);
  auto y_bad = torch::empty({2, 15});
  EXPECT_THROW(linear_bf16_small_m_out(torch::randn({2, 32}), w, y_bad), c10::Error);
}

// The small-M frame (small_m_linear): a bf16 input is widened exactly and the fp32 result, plus the bias in fp32,
// is rounded to bf16 once, so it equals the kernel on the widened input rounded by LibTorch, bit for bit; inputs it
// does not convert itself (fp16, a transposed view) go through LibTorch and give the same kernel result.
TEST(CpuLinear, SmallMFrameRoundsOnceAndKeepsShapes) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  const int64_t N = 37, K = 48;
  auto w = torch::randn({N, K}).to(torch::kBFloat16);
  auto b = torch::randn({N}).to(torch::kBFloat16);
  for (int64_t M = 1; M <= kSmallMMaxRows; ++M) {
    auto x = torch::randn({M, 1, K}).to(torch::kBFloat16);
    auto y32 = torch::full({M, N}, std::numeric_limits<float>::quiet_NaN());
    linear_bf16_small_m_out(x.to(torch::kFloat32).view({M, K}), w, y32);
    auto want = (y32 + b.to(torch::kFloat32)).to(torch::kBFloat16).view({M, 1, N});
    auto got = linear_bf16_cpu(x, w, b);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(got, want)) << "M " << M;
    EXPECT_TRUE(torch::equal(linear_bf16_cpu(x.to(torch::kFloat32), w, {}), y32.view({M, 1, N}))) << "fp32, M " << M;
    auto half = linear_bf16_cpu(x.to(torch::kHalf), w, b);
    EXPECT_EQ(half.scalar_type(), torch::kHalf);
    EXPECT_TRUE(torch::equal(half, (y32 + b.to(torch::kFloat32)).to(torch::kHalf).view({M, 1, N}))) << "fp16, M " << M;
    auto xt = x.view({M, K}).t().contiguous().t();  // the same values, not contiguous
    EXPECT_TRUE(torch::equal(linear_bf16_cpu(xt, w, b), want.view({M, N}))) << "view, M " << M;
  }
}

// The frame's bf16 rounding (vectorised) equals LibTorch's .to(bf16) bit for bit where rounding rules matter:
// halfway cases (to even), overflow to infinity, infinities, subnormals, signed zero, and gives NaN for NaN; with
// and without a bias, over two vectors of 8 and a tail. The kernel here just writes the chosen fp32 results.
TEST(CpuLinear, SmallMFrameRoundsSpecialValuesAsLibTorch) {
  torch::NoGradGuard no_grad;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> values = {1.00390625f, 1.01171875f, -1.00390625f, 3.38953139e38f, 3.4e38f, inf,
                                     -inf,        nan,         0.0f,         -0.0f,          1e-40f,  -3e-39f,
                                     65504.0f,    2.0f / 3,    -1.5e-3f,     7.0f,           1.00390625f, 3.4e38f,
                                     -nan,        0.1f,        12345.678f};
  const int64_t N = static_cast<int64_t>(values.size());
  const auto y32 = torch::tensor(values).view({1, N});
  for (bool with_bias : {false, true}) {
    const auto bias = with_bias ? torch::randn({N}) : torch::Tensor();
    const auto x = torch::zeros({1, 4}, torch::kBFloat16);  // sets the shape and the output dtype
    auto got = small_m_linear(x, N, bias, [&](const float*, int64_t, float* y) {
      std::memcpy(y, values.data(), sizeof(float) * values.size());
    });
    const auto want = (with_bias ? y32 + bias : y32).to(torch::kBFloat16);
    const auto nan_got = torch::isnan(got), nan_want = torch::isnan(want);
    EXPECT_TRUE(torch::equal(nan_got, nan_want)) << "bias " << with_bias;
    // NaN's bits are LibTorch's choice (0xFFFF from its vectorised cast, 0x7FC0 from the scalar one): not compared.
    const auto bits_got = got.view(torch::kShort).masked_fill(nan_got, 0);
    EXPECT_TRUE(torch::equal(bits_got, want.view(torch::kShort).masked_fill(nan_want, 0)))
        << "bias " << with_bias << "\n" << got.view(torch::kShort) << "\n" << want.view(torch::kShort);
  }
}

// The whole decode on the fast kernels (projections, and llm/decode_attention for every step after the prompt)
// equals the reference path (LibTorch on widened weights, LibTorch attention): same greedy tokens.
TEST(CpuLinear, GreedyGenerationEqualsReferencePath) {
  LlamaForCausalLM model(LlamaConfig::preset("tiny"), torch::kBFloat16);
  init_random_weights(*model, 5);
  model->eval();
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
  GenerateParams gp;
  gp.n_predict = 32;
  gp.sampling.temperature = 0;  // greedy
  gp.eos_ids = {-1};
  const std::vector<int32_t> prompt = {256, 72, 105, 33};
  ASSERT_TRUE(cpu_fast_kernels());
  auto fast = generate(*model, tok, prompt, gp);
  set_cpu_fast_kernels(false);
  auto ref = generate(*model, tok, prompt, gp);
  set_cpu_fast_kernels(true);
  EXPECT_EQ(fast.tokens, ref.tokens);
  EXPECT_EQ(fast.tokens.size(), 32u);
}

}  // namespace
}  // namespace llama_mm
