// Tests for llm/batch_generator.cpp and LlamaForCausalLMImpl::hidden_rows: sequences decoded together, each at its
// own cache row and position, give what each gives alone (logits, tokens, streamed text, stop reasons).
#include "llm/llm.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

namespace llama_mm {
namespace {

struct Tiny {
  LlamaForCausalLM model{nullptr};
  Tokenizer tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
  explicit Tiny(torch::Dtype dtype = torch::kFloat32) {
    model = LlamaForCausalLM(LlamaConfig::preset("tiny"), dtype);
    init_random_weights(*model, 5);
    model->eval();
  }
};

std::vector<int32_t> prompt_of(const std::string& text) {
  std::vector<int32_t> ids = {256};
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

torch::Tensor ids_tensor(const std::vector<int32_t>& ids) {
  return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
}

TEST(HiddenRows, EachRowEqualsItsSequenceAlone) {
  torch::NoGradGuard no_grad;
  Tiny t;
  auto& m = *t.model;
  const std::vector<std::vector<int32_t>> prompts = {prompt_of("abc"), prompt_of("hello world"), prompt_of("x")};
  const std::vector<int32_t> next = {70, 71, 72};
  // Alone: prompt then the next token, batch 1.
  std::vector<torch::Tensor> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    KVCache c(m.config(), 1, 32, torch::kFloat32, torch::kCPU);
    m.forward(ids_tensor(prompts[i]), &c);
    alone.push_back(m.forward(ids_tensor({next[i]}), &c)[0][0]);
  }
  // Together: each prompt prefilled into its own row of one cache, then one step over several rows.
  for (const std::vector<int64_t>& rows : {std::vector<int64_t>{0, 1, 2}, std::vector<int64_t>{2, 0}}) {
    KVCache shared(m.config(), 3, 32, torch::kFloat32, torch::kCPU);
    std::vector<int64_t> positions;
    for (int64_t r : rows) {
      KVCache view;
      view.n_ctx = 32;
      for (size_t l = 0; l < shared.k.size(); ++l) {
        view.k.push_back(shared.k[l].narrow(0, r, 1));
        view.v.push_back(shared.v[l].narrow(0, r, 1));
      }
      m.forward(ids_tensor(prompts[r]), &view);
      positions.push_back(view.n_past);
    }
    std::vector<int64_t> tokens;
    for (int64_t r : rows) tokens.push_back(next[r]);
    auto h = m.hidden_rows(m.embed(torch::tensor(tokens, torch::kInt64).unsqueeze(1)), shared, rows, positions);
    auto logits = m.logits(h, false);  // [B, 1, V]
    for (size_t b = 0; b < rows.size(); ++b)
      EXPECT_TRUE(torch::allclose(logits[b][0], alone[rows[b]], 1e-4, 1e-4))
          << "row " << rows[b] << " max diff " << (logits[b][0] - alone[rows[b]]).abs().max().item<float>();
  }
  KVCache small(m.config(), 2, 8, torch::kFloat32, torch::kCPU);
  EXPECT_THROW(m.hidden_rows(m.embed(ids_tensor({65})), small, {0}, {8}), Error);  // past the cache end
}

GenerateParams params(int n, float temperature, int64_t seed) {
  GenerateParams gp;
  gp.n_predict = n;
  gp.sampling.temperature = temperature;
  gp.sampling.seed = seed;
  gp.eos_ids = {-1};  // the random model may emit eos ids: never stop on them
  return gp;
}

struct Outcome {
  std::promise<GenerateResult> result;
  std::string streamed;
  std::string error;
};

BatchJob job_for(const std::vector<int32_t>& prompt, const GenerateParams& gp, Outcome& out) {
  BatchJob job;
  job.prompt = prompt;
  job.params = gp;
  job.eos = gp.eos_ids;
  job.on_text = [&out](const std::string& piece) {
    out.streamed += piece;
    return true;
  };
  job.on_done = [&out](GenerateResult r) { out.result.set_value(std::move(r)); };
  job.on_error = [&out](const std::string& e) {
    out.error = e;
    out.result.set_value({});
  };
  return job;
}

TEST(BatchGenerator, ConcurrentJobsEqualGenerateAlone) {
  Tiny t;
  struct Case {
    std::vector<int32_t> prompt;
    GenerateParams gp;
  };
  std::vector<Case> cases = {
      {prompt_of("The cat"), params(24, 0, 1)},
      {prompt_of("a much longer prompt than the others, to be prefilled in chunks"), params(16, 0.9f, 7)},
      {prompt_of("q"), params(30, 1.0f, 3)},
      {prompt_of("stop here"), params(40, 0, 1)},
      {prompt_of("zero"), params(0, 0, 1)},
      {prompt_of("fifth"), params(12, 0.7f, 99)},
      {prompt_of("sixth, queued"), params(20, 0, 1)},
  };
  cases[1].gp.n_batch = 8;
  // A stop string taken from the greedy continuation of case 3, so it really matches.
  const auto plain = generate(*t.model, t.tok, cases[3].prompt, cases[3].gp);
  ASSERT_GE(plain.text.size(), 10u);
  cases[3].gp.stop = {plain.text.substr(5, 2)};

  BatchGenerator gen(*t.model, t.tok, /*slots=*/3, /*queue=*/16, /*n_ctx=*/256);
  std::vector<Outcome> outs(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) ASSERT_TRUE(gen.submit(job_for(cases[i].prompt, cases[i].gp, outs[i])));
  for (size_t i = 0; i < cases.size(); ++i) {
    auto r = outs[i].result.get_future().get();
    ASSERT_TRUE(outs[i].error.empty()) << outs[i].error;
    auto gp = cases[i].gp;
    gp.n_ctx = 256;
    const auto ref = generate(*t.model, t.tok, cases[i].prompt, gp);
    EXPECT_EQ(r.tokens, ref.tokens) << "case " << i;
    EXPECT_EQ(r.text, ref.text) << "case " << i;
    EXPECT_EQ(r.stop_reason, ref.stop_reason) << "case " << i;
    EXPECT_EQ(outs[i].streamed, r.text) << "case " << i;
    EXPECT_EQ(r.timings.n_prompt, static_cast<int64_t>(cases[i].prompt.size()));
  }
  // Several sequences really shared steps.
  const auto stats = gen.stats();
  ASSERT_GT(stats.steps, 0);
  EXPECT_GT(static_cast<double>(stats.step_rows) / stats.steps, 1.5);
  EXPECT_GT(stats.decode_seconds, 0);
  // Every prompt position was prefilled once, the chunked prompt included (a job asking for no token is not).
  int64_t prompt_positions = 0;
  for (const auto& c : cases)
    if (c.gp.n_predict > 0) prompt_positions += static_cast<int64_t>(c.prompt.size());
  EXPECT_EQ(stats.prefill_tokens, prompt_positions);
  EXPECT_GT(stats.prefill_seconds, 0);
  EXPECT_EQ(stats.slots, 3);
  EXPECT_EQ(gen.running(), 0);
  EXPECT_EQ(gen.waiting(), 0);
}

TEST(BatchGenerator, Bf16RowsEqualAlone) {
  Tiny t(torch::kBFloat16);
  BatchGenerator gen(*t.model, t.tok, 4, 4, 128);
  std::vector<std::vector<int32_t>> prompts = {prompt_of("one"), prompt_of("two two"), prompt_of("three 3 3"),
                                               prompt_of("four")};
  std::vector<Outcome> outs(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) ASSERT_TRUE(gen.submit(job_for(prompts[i], params(16, 0, 1), outs[i])));
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto r = outs[i].result.get_future().get();
    auto gp = params(16, 0, 1);
    gp.n_ctx = 128;
    EXPECT_EQ(r.tokens, generate(*t.model, t.tok, prompts[i], gp).tokens) << "prompt " << i;
  }
}

TEST(BatchGenerator, PerSequenceInterleaveStaysOnItsRow) {
  torch::NoGradGuard no_grad;
  Tiny t;
  auto& m = *t.model;
  const int64_t D = m.config().hidden_size;
  // Stand-ins for adapter layers: sequence i adds its own vector before decoder layer 1.
  std::vector<torch::Tensor> shift = {torch::full({D}, 0.5f), torch::Tensor(), torch::linspace(-1, 1, D)};
  auto interleave_for = [&](size_t i) -> std::function<LayerInterleave(int64_t, int64_t)> {
    if (!shift[i].defined()) return {};
    return [&shift, i](int64_t, int64_t) -> LayerInterleave {
      return [&shift, i](int64_t layer, const torch::Tensor& h) { return layer == 1 ? h + shift[i] : h; };
    };
  };
  // Reference: the same interleave in a batch-1 decoder.
  struct Dec : TokenDecoder {
    LlamaForCausalLMImpl& m;
    KVCache c;
    LayerInterleave il;
    Dec(LlamaForCausalLMImpl& model, LayerInterleave f) : m(model), c(model.config(), 1, 64, torch::kFloat32, torch::kCPU), il(std::move(f)) {}
    torch::Tensor feed(const torch::Tensor& tokens) override {
      ForwardOptions o;
      o.interleave = il;
      return m.forward(tokens, &c, o);
    }
    int64_t n_past() const override { return c.n_past; }
    int64_t n_ctx() const override { return c.n_ctx; }
    torch::Device device() const override { return torch::kCPU; }
  };
  BatchGenerator gen(m, t.tok, 3, 3, 64);
  std::vector<Outcome> outs(3);
  const auto gp = params(20, 0, 1);
  for (size_t i = 0; i < 3; ++i) {
    auto job = job_for(prompt_of("same prompt"), gp, outs[i]);
    job.interleave = interleave_for(i);
    ASSERT_TRUE(gen.submit(std::move(job)));
  }
  std::vector<std::vector<int32_t>> got;
  for (size_t i = 0; i < 3; ++i) {
    got.push_back(outs[i].result.get_future().get().tokens);
    auto f = interleave_for(i);
    Dec dec(m, f ? f(0, 1) : LayerInterleave{});
    EXPECT_EQ(got[i], generate(dec, t.tok, prompt_of("same prompt"), gp, {-1}).tokens) << "sequence " << i;
  }
  EXPECT_NE(got[0], got[1]);  // the interleave mattered
  EXPECT_NE(got[2], got[1]);
}

TEST(BatchGenerator, QueueLimitStopReasonsAndErrorsStayWithTheirJob) {
  Tiny t;
  BatchGenerator gen(*t.model, t.tok, /*slots=*/1, /*queue=*/1, /*n_ctx=*/32);
  // Job 1 holds the loop in its first stop check until released.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  Outcome o1, o2, o3, o4;
  auto j1 = job_for(prompt_of("hold"), params(8, 0, 1), o1);
  j1.should_stop = [&] {
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return std::string();
  };
  ASSERT_TRUE(gen.submit(std::move(j1)));
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  EXPECT_EQ(gen.running(), 1);
  EXPECT_FALSE(gen.full());
  // Job 2 stops itself with its own reason (a deadline) at its 4th check: before the prefill, then before each
  // step, so after 3 tokens.
  auto j2 = job_for(prompt_of("deadline"), params(20, 0, 1), o2);
  auto polls = std::make_shared<int>(0);
  j2.should_stop = [polls] { return ++*polls >= 4 ? std::string("deadline") : std::string(); };
  ASSERT_TRUE(gen.submit(std::move(j2)));
  EXPECT_TRUE(gen.full());
  EXPECT_FALSE(gen.submit(job_for(prompt_of("refused"), params(4, 0, 1), o3)));
  EXPECT_EQ(gen.waiting(), 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_EQ(o1.result.get_future().get().tokens.size(), 8u);
  auto r2 = o2.result.get_future().get();
  EXPECT_EQ(r2.stop_reason, "deadline");
  EXPECT_EQ(r2.tokens.size(), 3u);
  // A prompt longer than the cache fails alone; the generator goes on.
  ASSERT_TRUE(gen.submit(job_for(std::vector<int32_t>(40, 65), params(4, 0, 1), o4)));
  o4.result.get_future().get();
  EXPECT_NE(o4.error.find("context overflow"), std::string::npos) << o4.error;
  Outcome o5;
  ASSERT_TRUE(gen.submit(job_for(prompt_of("after"), params(5, 0, 1), o5)));
  EXPECT_EQ(o5.result.get_future().get().tokens.size(), 5u);
  gen.shutdown();
  Outcome o6;
  EXPECT_FALSE(gen.submit(job_for(prompt_of("late"), params(1, 0, 1), o6)));
}

}  // namespace
}  // namespace llama_mm
