// tests/media/transcript_format_test.cpp: media/transcript_format.cpp byte for byte on known segments.
#include "media/transcript_format.h"

#include "llm/error.h"

#include <gtest/gtest.h>

namespace llama_mm::media {
namespace {

Transcript sample() {
  Transcript t;
  t.language = "English";
  t.duration = 3725.5;
  t.segments = {{0.0, 4.25, " Hello world. ", {9906, 1917}},
                {4.25, 59.9996, "Second line\n", {}},
                {3599.5, 3725.5, "  Past the hour.", {13}}};
  return t;
}

TEST(TranscriptFormat, TimestampsRoundToTheMillisecond) {
  EXPECT_EQ(format_timestamp(0, ','), "00:00:00,000");
  EXPECT_EQ(format_timestamp(59.9996, ','), "00:01:00,000");
  EXPECT_EQ(format_timestamp(3725.5004, '.'), "01:02:05.500");
  EXPECT_EQ(format_timestamp(100 * 3600 + 0.001, ','), "100:00:00,001");
  EXPECT_EQ(format_timestamp(-1, ','), "00:00:00,000");
}

TEST(TranscriptFormat, SrtIsOneBasedWithCommaMilliseconds) {
  EXPECT_EQ(format_transcript(sample(), TranscriptFormat::Srt),
            "1\n00:00:00,000 --> 00:00:04,250\nHello world.\n\n"
            "2\n00:00:04,250 --> 00:01:00,000\nSecond line\n\n"
            "3\n00:59:59,500 --> 01:02:05,500\nPast the hour.\n\n");
}

TEST(TranscriptFormat, VttHasHeaderAndDotMilliseconds) {
  EXPECT_EQ(format_transcript(sample(), TranscriptFormat::Vtt),
            "WEBVTT\n\n"
            "00:00:00.000 --> 00:00:04.250\nHello world.\n\n"
            "00:00:04.250 --> 00:01:00.000\nSecond line\n\n"
            "00:59:59.500 --> 01:02:05.500\nPast the hour.\n\n");
}

TEST(TranscriptFormat, TextAndJson) {
  EXPECT_EQ(format_transcript(sample(), TranscriptFormat::Text), "Hello world. Second line Past the hour.\n");
  EXPECT_EQ(format_transcript(sample(), TranscriptFormat::Json),
            "{\"text\":\"Hello world. Second line Past the hour.\"}\n");
}

TEST(TranscriptFormat, VerboseJsonFollowsOpenAI) {
  auto t = sample();
  t.task = "translate";
  const std::string expected =
      R"({"duration":3725.5,"language":"English","segments":[)"
      R"({"end":4.25,"id":0,"seek":0,"start":0.0,"text":"Hello world.","tokens":[9906,1917]},)"
      R"({"end":59.9996,"id":1,"seek":425,"start":4.25,"text":"Second line","tokens":[]},)"
      R"({"end":3725.5,"id":2,"seek":359950,"start":3599.5,"text":"Past the hour.","tokens":[13]}],)"
      R"("task":"translate","text":"Hello world. Second line Past the hour."})";
  EXPECT_EQ(transcript_json(t, true).dump(), expected);
  EXPECT_EQ(format_transcript(t, TranscriptFormat::VerboseJson), transcript_json(t, true).dump(2) + "\n");
}

TEST(TranscriptFormat, FormatNames) {
  EXPECT_EQ(parse_transcript_format("srt"), TranscriptFormat::Srt);
  EXPECT_EQ(parse_transcript_format("text"), TranscriptFormat::Text);
  EXPECT_EQ(transcript_format_extension(parse_transcript_format("verbose_json")), "verbose.json");
  try {
    parse_transcript_format("docx");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("docx"), std::string::npos);
  }
}

}  // namespace
}  // namespace llama_mm::media
