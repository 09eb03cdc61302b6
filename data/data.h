// data/data.h: the public header of data/: synthetic, seeded datasets for the demo model (issue 8).
#pragma once

#include "data/motion_clips.h"
#include "data/shape_scenes.h"
#include "data/spoken_utterances.h"
