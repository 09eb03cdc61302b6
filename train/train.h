// train/train.h: the public surface of train/ (issue 6): `llama-mm train CONFIG.yaml`. So far the strict
// YAML config (train_config.h); the data loaders, objectives and the training loop come next.
#pragma once

#include "train/train_config.h"
