// RunTrainLoop: evaluation cadence, early stop, checkpoint and resume.
#include "experiments/common/train_loop.h"

#include "experiments/common/csv.h"
#include "kernels/common/schedules.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

namespace indexgrad {
namespace experiments {
namespace {

int CountLines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

TrainLoopOptions Options(const std::string& dir, int64_t steps) {
  TrainLoopOptions o;
  o.label = "test";
  o.steps = steps;
  o.eval_every = 5;
  o.checkpoint_every = 5;
  o.checkpoint_path = dir + "/run.ckpt";
  o.csv_path = dir + "/run.csv";
  o.train_columns = {"loss"};
  o.eval_columns = {"metric"};
  return o;
}

TEST(BestModel, KeepsTheBestAndRestoresTheCurrent) {
  torch::nn::Linear lin(2, 1);
  BestModel best(*lin);
  bool ran = false;
  best.WithBest([&] { ran = true; });  // nothing offered: runs as is
  EXPECT_TRUE(ran);
  EXPECT_FALSE(best.has_best());
  best.Offer(NAN, 5);  // a NaN score is never the best
  EXPECT_FALSE(best.has_best());
  torch::NoGradGuard no_grad;
  lin->weight.fill_(1);
  best.Offer(0.5, 10);
  lin->weight.fill_(2);
  best.Offer(0.7, 20);  // worse: not kept
  lin->weight.fill_(3);
  best.Offer(0.5, 30);  // a tie: the earlier stays
  lin->weight.fill_(4);
  EXPECT_EQ(best.step(), 10);
  EXPECT_EQ(best.score(), 0.5);
  float seen = 0;
  best.WithBest([&] { seen = lin->weight[0][0].item<float>(); });
  EXPECT_EQ(seen, 1.0f);
  EXPECT_EQ(lin->weight[0][0].item<float>(), 4.0f);  // put back
  best.Offer(0.1, 40);
  best.WithBest([&] { seen = lin->weight[0][1].item<float>(); });
  EXPECT_EQ(seen, 4.0f);
}

TEST(SetLearningRate, EveryParameterGroup) {
  torch::nn::Linear a(2, 2), b(2, 1);
  torch::optim::Adam adam(std::vector<torch::optim::OptimizerParamGroup>{
                              torch::optim::OptimizerParamGroup(a->parameters()),
                              torch::optim::OptimizerParamGroup(b->parameters())},
                          torch::optim::AdamOptions(1e-3));
  SetLearningRate(adam, 0.25);
  ASSERT_EQ(adam.param_groups().size(), 2u);
  for (auto& group : adam.param_groups()) EXPECT_EQ(group.options().get_lr(), 0.25);
}

TEST(CosineDecay, FromLrToZero) {
  EXPECT_DOUBLE_EQ(CosineDecay(0.2, 0, 100), 0.2);
  EXPECT_NEAR(CosineDecay(0.2, 50, 100), 0.1, 1e-15);
  EXPECT_NEAR(CosineDecay(0.2, 25, 100), 0.1 * (1 + std::sqrt(0.5)), 1e-15);
  EXPECT_NEAR(CosineDecay(0.2, 100, 100), 0.0, 1e-15);
}

TEST(GeometricAnneal, StartToEndOverTheFractionThenEnd) {
  EXPECT_DOUBLE_EQ(GeometricAnneal(4.0, 0.25, 0.5, 0, 100), 4.0);
  EXPECT_NEAR(GeometricAnneal(4.0, 0.25, 0.5, 25, 100), 1.0, 1e-15);  // half-way: sqrt(4 * 0.25)
  EXPECT_NEAR(GeometricAnneal(4.0, 0.25, 0.5, 50, 100), 0.25, 1e-15);
  EXPECT_NEAR(GeometricAnneal(4.0, 0.25, 0.5, 90, 100), 0.25, 1e-15);
  EXPECT_NEAR(GeometricAnneal(4.0, 0.25, 0.5, 3, 0), 0.25, 1e-15);  // no steps: the end
}

TEST(RunTrainLoop, ResumesFromCheckpoint) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/resume";
  ASSERT_TRUE(MakeDirs(dir).ok());
  torch::nn::Linear model(2, 1);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  int calls = 0, evals = 0;
  std::vector<int64_t> steps_seen, evals_seen;
  auto step = [&](int64_t s) {
    ++calls;
    steps_seen.push_back(s);
    return std::vector<double>{1.0};
  };
  auto eval = [&](int64_t steps_done, bool* stop) {
    ++evals;
    evals_seen.push_back(steps_done);
    *stop = false;
    return std::vector<double>{2.0};
  };
  auto first = RunTrainLoop(Options(dir, 10), *model, sgd, step, eval);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(calls, 10);
  EXPECT_EQ(evals, 2);  // steps 5 and 10
  EXPECT_FALSE(first->resumed);
  // As if killed after logging two steps past the checkpoint: the resume
  // repeats them and the CSV keeps one row per step.
  {
    std::ofstream(dir + "/run.csv", std::ios::app) << "11,9,\n12,9,\n";
  }
  // A longer run continues at step 10: 5 more steps, CSV appended.
  auto second = RunTrainLoop(Options(dir, 15), *model, sgd, step, eval);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->resumed);
  EXPECT_EQ(second->steps_done, 15);
  EXPECT_EQ(calls, 15);
  // The resumed run counts on from 10, not from 0 (schedules rely on it).
  std::vector<int64_t> want(15);
  for (int64_t i = 0; i < 15; ++i) want[i] = i;
  EXPECT_EQ(steps_seen, want);
  EXPECT_EQ(evals_seen, (std::vector<int64_t>{5, 10, 15}));
  EXPECT_EQ(CountLines(dir + "/run.csv"), 1 + 15);  // one header
  {
    std::ifstream in(dir + "/run.csv");
    std::string line;
    std::getline(in, line);  // header
    for (int64_t s = 1; s <= 15; ++s) {
      ASSERT_TRUE(std::getline(in, line));
      EXPECT_EQ(line.substr(0, line.find(',')), std::to_string(s));
      EXPECT_NE(line.substr(line.find(',') + 1, 1), "9") << line;  // not the dropped rows
    }
  }
  EXPECT_GE(second->seconds, first->seconds);
  // A finished run asked for no more steps trains nothing and reports the
  // CSV's last training values (summaries read them).
  auto third = RunTrainLoop(Options(dir, 15), *model, sgd, step, eval);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(calls, 15);
  EXPECT_EQ(third->last_train, (std::vector<double>{1.0}));
  EXPECT_EQ(third->last_eval, (std::vector<double>{2.0}));
}

TEST(RunTrainLoop, TheBestModelComesBackFromTheCheckpoint) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/best";
  ASSERT_TRUE(MakeDirs(dir).ok());
  // Scores by step: the best is step 10's model, not the last one's.
  auto score = [](int64_t steps_done) { return steps_done == 10 ? 0.1 : 0.5; };
  at::Tensor weight_at_10;
  // One process's run: 15 SGD steps, or only an evaluation when the
  // checkpoint is finished.
  auto run = [&](torch::nn::Linear& model, BestModel& best) {
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
    TrainLoopOptions o = Options(dir, 15);
    o.best = &best;
    return RunTrainLoop(
        o, *model, sgd,
        [&](int64_t) {
          sgd.zero_grad();
          model->forward(torch::ones({1, 2})).sum().backward();
          sgd.step();
          return std::vector<double>{1.0};
        },
        [&](int64_t steps_done, bool*) {
          if (steps_done == 10) weight_at_10 = model->weight.detach().clone();
          best.Offer(score(steps_done), steps_done);
          return std::vector<double>{score(steps_done)};
        });
  };
  {
    torch::nn::Linear model(2, 1);
    BestModel best(*model);
    auto r = run(model, best);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->resumed);
    EXPECT_EQ(best.step(), 10);
  }
  ASSERT_TRUE(weight_at_10.defined());
  // Another process: a fresh model, its best restored from the checkpoint
  // (the run is finished: evaluation only, which offers the final model).
  torch::nn::Linear model(2, 1);
  BestModel best(*model);
  auto r = run(model, best);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->resumed);
  EXPECT_EQ(best.step(), 10);
  EXPECT_EQ(best.score(), 0.1);
  const at::Tensor final_weight = model->weight.detach().clone();
  EXPECT_FALSE(at::equal(final_weight, weight_at_10));
  best.WithBest([&] { EXPECT_TRUE(at::equal(model->weight, weight_at_10)); });
  EXPECT_TRUE(at::equal(model->weight, final_weight));
  // A best model of another shape is a clear error naming the tensor and
  // both shapes (RunTrainLoop adds the checkpoint's path).
  torch::nn::Linear wider(3, 1);
  BestModel best3(*wider);
  torch::serialize::OutputArchive saved;
  best.Save(saved);
  const std::string path = dir + "/best_only.pt";
  saved.save_to(path);
  torch::serialize::InputArchive in;
  in.load_from(path);
  absl::Status st = best3.Load(in);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("[1, 2] there and [1, 3] here"), std::string::npos)
      << st;
  EXPECT_FALSE(best3.has_best());
}

TEST(RunTrainLoop, StopsWhenEvaluationSaysSo) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/stop";
  ASSERT_TRUE(MakeDirs(dir).ok());
  torch::nn::Linear model(2, 1);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  int calls = 0;
  auto result = RunTrainLoop(
      Options(dir, 100), *model, sgd,
      [&](int64_t) {
        ++calls;
        return std::vector<double>{0.0};
      },
      [&](int64_t, bool* stop) {
        *stop = calls >= 10;
        return std::vector<double>{static_cast<double>(calls)};
      });
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->stopped_early);
  EXPECT_EQ(result->steps_done, 10);
  // Rerunning a finished run trains nothing and reports its evaluation.
  int64_t evaluated_at = -1;
  auto again = RunTrainLoop(Options(dir, 100), *model, sgd,
                            [&](int64_t) {
                              ++calls;
                              return std::vector<double>{0.0};
                            },
                            [&](int64_t steps_done, bool* stop) {
                              evaluated_at = steps_done;
                              *stop = false;
                              return std::vector<double>{7.0};
                            });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(calls, 10);
  EXPECT_TRUE(again->stopped_early);
  EXPECT_EQ(again->last_eval, std::vector<double>{7.0});
  EXPECT_EQ(evaluated_at, 10);
}

TEST(RunTrainLoop, CheckpointOfAnotherShapeIsAClearError) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/shape";
  ASSERT_TRUE(MakeDirs(dir).ok());
  auto step = [](int64_t) { return std::vector<double>{1.0}; };
  auto eval = [](int64_t, bool* stop) {
    *stop = false;
    return std::vector<double>{2.0};
  };
  torch::nn::Linear small(2, 1);
  torch::optim::SGD sgd_small(small->parameters(), torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(RunTrainLoop(Options(dir, 5), *small, sgd_small, step, eval).ok());
  torch::nn::Linear big(3, 1);
  const at::Tensor before = big->weight.detach().clone();
  torch::optim::SGD sgd_big(big->parameters(), torch::optim::SGDOptions(0.1));
  auto r = RunTrainLoop(Options(dir, 10), *big, sgd_big, step, eval);
  ASSERT_FALSE(r.ok());
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find("parameter 'weight' is [1, 2] there and [1, 3] here"), std::string::npos)
      << msg;
  EXPECT_TRUE(big->weight.equal(before));  // nothing was loaded
}

TEST(RunTrainLoop, NestedModulesResumeAndTheirShapesAreChecked) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/nested";
  ASSERT_TRUE(MakeDirs(dir).ok());
  auto step = [](int64_t) { return std::vector<double>{1.0}; };
  auto eval = [](int64_t, bool* stop) {
    *stop = false;
    return std::vector<double>{2.0};
  };
  auto net = [](int64_t hidden) {
    return torch::nn::Sequential(torch::nn::Linear(2, hidden), torch::nn::BatchNorm1d(hidden),
                                 torch::nn::Linear(hidden, 1));
  };
  torch::nn::Sequential first = net(4);
  torch::optim::SGD sgd_first(first->parameters(), torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(RunTrainLoop(Options(dir, 5), *first, sgd_first, step, eval).ok());
  // The same architecture resumes (parameters and buffers nested per child).
  torch::nn::Sequential same = net(4);
  torch::optim::SGD sgd_same(same->parameters(), torch::optim::SGDOptions(0.1));
  auto resumed = RunTrainLoop(Options(dir, 10), *same, sgd_same, step, eval);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->resumed);
  EXPECT_TRUE(same[0]->as<torch::nn::Linear>()->weight.equal(
      first[0]->as<torch::nn::Linear>()->weight));
  // Another width is refused, naming the nested parameter.
  torch::nn::Sequential wider = net(8);
  torch::optim::SGD sgd_wider(wider->parameters(), torch::optim::SGDOptions(0.1));
  auto r = RunTrainLoop(Options(dir, 15), *wider, sgd_wider, step, eval);
  ASSERT_FALSE(r.ok());
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find("parameter '0.weight' is [4, 2] there and [8, 2] here"),
            std::string::npos)
      << msg;
}

TEST(RunTrainLoop, CorruptCheckpointIsAClearError) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/corrupt";
  ASSERT_TRUE(MakeDirs(dir).ok());
  std::ofstream(dir + "/run.ckpt") << "not a checkpoint";
  torch::nn::Linear model(2, 1);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  auto result = RunTrainLoop(Options(dir, 5), *model, sgd,
                             [](int64_t) { return std::vector<double>{0.0}; },
                             [](int64_t, bool*) { return std::vector<double>{0.0}; });
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("cannot resume from checkpoint"),
            std::string::npos);
}

}  // namespace
}  // namespace experiments
}  // namespace indexgrad
