// Tests train/dataset: each manifest format gives the samples and turns it holds, media resolved against the root,
// and malformed manifests fail naming the file and line.
#include "train/train.h"

#include "llm/error.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm::train {
namespace {

namespace fs = std::filesystem;

std::string error_of(const DataConfig& d) {
  try {
    read_dataset(d);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode) << e.what();
    return e.what();
  }
  return "";
}

TEST(Dataset, JsonlCaptionsAndConversations) {
  test::TempDir dir;
  std::ofstream(dir / "d.jsonl") << R"({"image": "a.jpg", "text": "a cat"}
)" << "\n" << R"({"video": "/abs/v.mp4", "text": "waves", "prompt": "What happens?"}
{"audio": "s.flac", "text": "hello", "language": "fr"}
{"image": "b.png", "conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A dog."}, {"from": "human", "value": "Colour?"}, {"from": "gpt", "value": "Brown."}]}
{"prompt": "sky?", "text": "blue"}
)";
  auto s = read_dataset({"jsonl", (dir / "d.jsonl").string(), "", 0.0});
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[4].kind, MediaKind::Text);  // no media: a text-only conversation
  EXPECT_EQ(s[4].media, "");
  EXPECT_EQ(s[4].turns[0].text, "sky?");
  EXPECT_EQ(s[4].turns[1].text, "blue");
  EXPECT_EQ(s[0].kind, MediaKind::Image);
  EXPECT_EQ(s[0].media, (dir / "a.jpg").string());
  ASSERT_EQ(s[0].turns.size(), 2u);
  EXPECT_EQ(s[0].turns[0].role, "user");
  EXPECT_EQ(s[0].turns[0].text, "");
  EXPECT_EQ(s[0].turns[1].text, "a cat");
  EXPECT_EQ(s[0].origin, (dir / "d.jsonl").string() + ":1");
  EXPECT_EQ(s[1].kind, MediaKind::Video);
  EXPECT_EQ(s[1].media, "/abs/v.mp4");
  EXPECT_EQ(s[1].turns[0].text, "What happens?");
  EXPECT_EQ(s[1].origin, (dir / "d.jsonl").string() + ":3");  // blank lines are skipped, numbers kept
  EXPECT_EQ(s[2].kind, MediaKind::Audio);
  EXPECT_EQ(s[2].language, "fr");
  ASSERT_EQ(s[3].turns.size(), 4u);
  EXPECT_EQ(s[3].turns[0].text, "What is it?");  // the marker is dropped
  EXPECT_EQ(s[3].turns[3].role, "assistant");
  EXPECT_EQ(s[3].turns[3].text, "Brown.");
  // A root other than the manifest's folder.
  auto r = read_dataset({"jsonl", (dir / "d.jsonl").string(), "/data", 0.0});
  EXPECT_EQ(r[0].media, "/data/a.jpg");
}

TEST(Dataset, ShareGptArrayCocoLibriSpeechNemo) {
  test::TempDir dir;
  std::ofstream(dir / "llava.json") << R"([{"id": "1", "image": "x.jpg", "conversations": [
      {"from": "system", "value": "Be brief."}, {"from": "human", "value": "Describe <image>"}, {"from": "gpt", "value": "A hill."}]}])";
  auto sg = read_dataset({"sharegpt", (dir / "llava.json").string(), "", 0.0});
  ASSERT_EQ(sg.size(), 1u);
  EXPECT_EQ(sg[0].turns[0].role, "system");
  EXPECT_EQ(sg[0].turns[1].text, "Describe");

  std::ofstream(dir / "coco.json") << R"({"images": [{"id": 7, "file_name": "img7.jpg"}, {"id": 9, "file_name": "img9.jpg"}],
      "annotations": [{"image_id": 9, "caption": "two birds"}, {"image_id": 7, "caption": "a boat"}, {"image_id": 9, "caption": "birds"}]})";
  auto coco = read_dataset({"coco", (dir / "coco.json").string(), (dir / "train2017").string(), 0.0});
  ASSERT_EQ(coco.size(), 3u);
  EXPECT_EQ(coco[0].media, (dir / "train2017/img9.jpg").string());
  EXPECT_EQ(coco[1].turns[1].text, "a boat");

  fs::create_directories(dir / "ls/19/198");
  fs::create_directories(dir / "ls/26/495");
  std::ofstream(dir / "ls/26/495/26-495.trans.txt") << "26-495-0000 THE FIRST\n26-495-0001 AND SECOND\n";
  std::ofstream(dir / "ls/19/198/19-198.trans.txt") << "19-198-0000 NORTHANGER ABBEY\n";
  auto ls = read_dataset({"librispeech", (dir / "ls").string(), "", 0.0});
  ASSERT_EQ(ls.size(), 3u);
  EXPECT_EQ(ls[0].media, (dir / "ls/19/198/19-198-0000.flac").string());  // sorted by transcript path
  EXPECT_EQ(ls[0].turns[1].text, "NORTHANGER ABBEY");
  EXPECT_EQ(ls[2].turns[1].text, "AND SECOND");
  EXPECT_EQ(ls[2].kind, MediaKind::Audio);

  std::ofstream(dir / "nemo.json") << R"({"audio_filepath": "a/1.wav", "duration": 1.5, "text": "hi there"})" << "\n";
  auto nemo = read_dataset({"nemo", (dir / "nemo.json").string(), "", 0.0});
  ASSERT_EQ(nemo.size(), 1u);
  EXPECT_EQ(nemo[0].media, (dir / "a/1.wav").string());
  EXPECT_EQ(nemo[0].turns[1].text, "hi there");
}

TEST(Dataset, MalformedManifestsNameTheFileAndLine) {
  test::TempDir dir;
  const auto p = (dir / "d.jsonl").string();
  auto with = [&](const std::string& text) {
    std::ofstream(p) << text;
    return error_of({"jsonl", p, "", 0.0});
  };
  EXPECT_NE(with("{\"image\": \"a.jpg\", \"text\": \"x\"}\n{not json\n").find(p + ":2: not valid JSON"), std::string::npos);
  EXPECT_NE(with("{\"image\": \"a.jpg\"}\n").find(p + ":1: missing \"text\""), std::string::npos);
  EXPECT_NE(with("{\"image\": \"a\", \"audio\": \"b\", \"text\": \"x\"}\n").find("expected one of"), std::string::npos);
  EXPECT_NE(with("{\"image\": 3, \"text\": \"x\"}\n").find("\"image\" must be a string"), std::string::npos);
  EXPECT_NE(with("{\"image\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}]}\n")
                .find("no assistant"),
            std::string::npos);
  EXPECT_NE(with("\n\n").find("no samples"), std::string::npos);
  EXPECT_NE(error_of({"jsonl", (dir / "missing.jsonl").string(), "", 0.0}).find("missing.jsonl: cannot read"),
            std::string::npos);
  std::ofstream(dir / "c.json") << R"({"images": [], "annotations": [{"image_id": 1, "caption": "x"}]})";
  EXPECT_NE(error_of({"coco", (dir / "c.json").string(), "", 0.0}).find("annotations[0]: image_id 1 is not in"),
            std::string::npos);
}

}  // namespace
}  // namespace llama_mm::train
