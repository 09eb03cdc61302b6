// train/contrastive.cpp: heads, loss and retrieval metric of contrastive image-text pre-training (see contrastive.h).
#include "train/contrastive.h"

#include <cmath>

namespace llama_mm::train {

ContrastiveHeadsImpl::ContrastiveHeadsImpl(int64_t image_dim, int64_t text_dim, int64_t embed_dim, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto linear = [&](int64_t in) {  // nn.Linear's default range
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    return torch::empty({embed_dim, in}).uniform_(-bound, bound, gen);
  };
  image_weight = register_parameter("image_weight", linear(image_dim));
  text_weight = register_parameter("text_weight", linear(text_dim));
  logit_scale = register_parameter("logit_scale", torch::full({1}, std::log(1 / 0.07)));
}

torch::Tensor ContrastiveHeadsImpl::embed_images(const torch::Tensor& pooled) const {
  auto e = torch::matmul(pooled.to(torch::kFloat32), image_weight.t());
  return e / e.norm(2, -1, true).clamp_min(1e-12);
}

torch::Tensor ContrastiveHeadsImpl::embed_texts(const torch::Tensor& pooled) const {
  auto e = torch::matmul(pooled.to(torch::kFloat32), text_weight.t());
  return e / e.norm(2, -1, true).clamp_min(1e-12);
}

torch::Tensor clip_loss_sum(const torch::Tensor& images, const torch::Tensor& texts, const torch::Tensor& scale_log,
                            const torch::Tensor& same) {
  const auto scale = scale_log.clamp_max(std::log(100.0)).exp();
  auto logits = scale * torch::matmul(images, texts.t());  // [B, B]: image i against text j
  auto target = same.to(torch::kFloat32);
  target = target / target.sum(-1, true);  // rows of `same` are the columns transposed (equality is symmetric)
  auto i2t = -(target * torch::log_softmax(logits, 1)).sum();
  auto t2i = -(target * torch::log_softmax(logits.t(), 1)).sum();
  return (i2t + t2i) / 2;
}

torch::Tensor same_captions(const std::vector<std::vector<int64_t>>& captions) {
  const int64_t n = static_cast<int64_t>(captions.size());
  auto same = torch::zeros({n, n}, torch::kBool);
  auto a = same.accessor<bool, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) a[i][j] = captions[i] == captions[j];
  return same;
}

double retrieval_top1(const torch::Tensor& images, const torch::Tensor& texts, const torch::Tensor& same) {
  torch::NoGradGuard no_grad;
  const auto nearest = torch::matmul(images, texts.t()).argmax(1);  // [B]
  const auto hit = same.gather(1, nearest.unsqueeze(1)).squeeze(1);
  return hit.to(torch::kFloat64).mean().item<double>();
}

}  // namespace llama_mm::train
