// train/best_rq.cpp: random-projection quantizer targets, span masking and multi-softmax heads (see best_rq.h).
#include "train/best_rq.h"

#include <cmath>

namespace llama_mm::train {

BestRqImpl::BestRqImpl(const BestRqConfig& cfg, int64_t n_mels, int64_t stack, int64_t encoder_dim, uint64_t seed)
    : cfg_(cfg), stack_(stack) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t in = n_mels * stack, C = cfg.codebooks, K = cfg.codebook_size, d = cfg.codebook_dim;
  const double xavier = std::sqrt(2.0 / static_cast<double>(in + d));
  projections = register_buffer("projections", torch::empty({C, in, d}).normal_(0.0, xavier, gen));
  auto cb = torch::empty({C, K, d}).normal_(0.0, 1.0, gen);
  codebooks = register_buffer("codebooks", cb / cb.norm(2, -1, true));
  const double bound = 1.0 / std::sqrt(static_cast<double>(encoder_dim));  // nn.Linear's default range
  head_weight = register_parameter("head_weight", torch::empty({C * K, encoder_dim}).uniform_(-bound, bound, gen));
  head_bias = register_parameter("head_bias", torch::empty({C * K}).uniform_(-bound, bound, gen));
}

torch::Tensor BestRqImpl::targets(const torch::Tensor& normalised) const {
  torch::NoGradGuard no_grad;
  const int64_t B = normalised.size(0), T = normalised.size(1), M = normalised.size(2);
  const int64_t Tp = (T + stack_ - 1) / stack_;
  auto x = torch::zeros({B, Tp * stack_, M});
  x.narrow(1, 0, T).copy_(normalised);
  auto stacked = x.view({B * Tp, stack_ * M});                               // [N, M·stack]
  auto proj = torch::einsum("ni,cid->cnd", {stacked, projections});          // [C, N, d]
  proj = proj / proj.norm(2, -1, true).clamp_min(1e-12);
  auto ids = torch::bmm(proj, codebooks.transpose(1, 2)).argmax(-1);        // [C, N]: max cosine
  return ids.t().reshape({B, Tp, cfg_.codebooks});
}

torch::Tensor BestRqImpl::draw_mask(int64_t length, at::Generator gen) const {
  auto starts = torch::empty({length}).uniform_(0.0, 1.0, gen).lt(cfg_.mask_prob);
  auto mask = torch::zeros({length}, torch::kBool);
  auto s = starts.accessor<bool, 1>();
  auto m = mask.accessor<bool, 1>();
  for (int64_t t = 0; t < length; ++t)
    if (s[t])
      for (int64_t u = t; u < std::min(length, t + cfg_.mask_span); ++u) m[u] = true;
  return mask;
}

torch::Tensor BestRqImpl::logits(const torch::Tensor& hidden) const {
  auto l = torch::nn::functional::linear(hidden.to(torch::kFloat32), head_weight, head_bias);  // [N, C·K]
  return l.view({hidden.size(0), cfg_.codebooks, cfg_.codebook_size});
}

}  // namespace llama_mm::train
