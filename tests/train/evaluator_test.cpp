// Tests train/evaluator's scoring: word-level edit distance and counts (the greedy answers themselves are checked
// end to end in trainer_test).
#include "train/train.h"

#include <gtest/gtest.h>

namespace llama_mm::train {
namespace {

TEST(Evaluator, WordEditDistanceCountsSubstitutionsInsertionsAndDeletions) {
  EXPECT_EQ(word_edit_distance("a red cat", "a red cat"), 0);
  EXPECT_EQ(word_edit_distance("a red cat", "a blue cat"), 1);            // substitution
  EXPECT_EQ(word_edit_distance("a red cat", "a red fat cat"), 1);         // insertion
  EXPECT_EQ(word_edit_distance("a red cat", "red cat"), 1);               // deletion
  EXPECT_EQ(word_edit_distance("the cat sat on the mat", "cat sat mat on"), 4);
  EXPECT_EQ(word_edit_distance("", "two words"), 2);
  EXPECT_EQ(word_edit_distance("two words", ""), 2);
  EXPECT_EQ(word_edit_distance("  spaced   out ", "spaced out"), 0);      // whitespace is not a word
  EXPECT_EQ(word_count(" one  two\tthree\n"), 3);
}

}  // namespace
}  // namespace llama_mm::train
