// train/train.h: the public surface of train/ (issue 6): adapter training with the LLM frozen.
//   auto cfg = llama_mm::train::load_train_config("run.yaml", {"stages.0.steps=10"});
//   llama_mm::train::validate_train_config(cfg, "run.yaml");
//   auto result = llama_mm::train::run_training(cfg, {});
#pragma once

#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/contrastive.h"
#include "train/data_loader.h"
#include "train/data_parallel.h"
#include "train/dataset.h"
#include "train/evaluator.h"
#include "train/example_builder.h"
#include "train/metrics_log.h"
#include "train/metrics_plot.h"
#include "train/run_model.h"
#include "train/train_config.h"
#include "train/trainer.h"
