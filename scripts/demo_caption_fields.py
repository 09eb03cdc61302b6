#!/usr/bin/env python3
"""scripts/demo_caption_fields.py ANSWERS.jsonl...: which parts of the demo's shape-scene captions are wrong.

Reads the answers an evaluation wrote (train's RUN/eval/STAGE-stepN.jsonl, or `llama-mm eval --json`) and parses
each reference and answer with the caption grammar of `llama-mm data shapes` ("two red circles and a blue square on
a white background"). Prints, per file, the share of answers right in each field: the background, the set of
colours, the set of shapes, the number of objects, the whole scene (every shape with its colour and count), and
the exact caption. Answers the grammar cannot parse count as wrong in every field. Standard library only.
"""
import json
import re
import sys

COUNTS = {"a": 1, "an": 1, "two": 2, "three": 3}


def parse(caption):
    m = re.fullmatch(r"(.*) on a (\w+) background", caption.strip())
    if not m:
        return None
    items = []
    for part in re.split(r", | and ", m.group(1)):
        words = part.split()
        if len(words) != 3 or words[0] not in COUNTS:
            return None
        shape = words[2][:-1] if words[2].endswith("s") and COUNTS[words[0]] > 1 else words[2]
        items.append((COUNTS[words[0]], words[1], shape))
    return {"background": m.group(2), "colours": sorted({i[1] for i in items}),
            "shapes": sorted({i[2] for i in items}), "objects": sum(i[0] for i in items), "scene": sorted(items)}


def main(paths):
    fields = ["background", "colours", "shapes", "objects", "scene"]
    print("%-48s %7s %10s %8s %7s %8s %6s %6s" % ("file", "samples", "background", "colours", "shapes", "objects",
                                                  "scene", "exact"))
    for path in paths:
        rows = [json.loads(line) for line in open(path) if line.strip()]
        rows = [r for r in rows if "reference" in r and "answer" in r]  # `eval --json` ends with a summary line
        right = dict.fromkeys(fields + ["exact"], 0)
        for r in rows:
            ref, ans = parse(r["reference"]), parse(r["answer"])
            if ref is None:
                sys.exit(f"{path}: not a shape-scene caption: {r['reference']!r}")
            right["exact"] += r["reference"].strip() == r["answer"].strip()
            for f in fields:
                right[f] += ans is not None and ans[f] == ref[f]
        n = max(len(rows), 1)
        print("%-48s %7d %10.2f %8.2f %7.2f %8.2f %6.2f %6.2f" % (path[-48:], len(rows), right["background"] / n,
              right["colours"] / n, right["shapes"] / n, right["objects"] / n, right["scene"] / n, right["exact"] / n))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
