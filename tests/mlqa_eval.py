"""An independent SQuAD-style scorer: MLQA's official evaluation logic for lang="es", on raw JSON.

It shares no code with `kit`, so that the kit's scores can be checked against it:

    python tests/mlqa_eval.py DATA.json PRED.json      # prints {"exact_match", "f1", "n"}

As the kit's contract says, empty gold answers (failed translations: text "" or answer_start -1)
are dropped first, and a question left with none is not scored; a missing prediction scores 0.
"""
import json
import re
import string
import sys
import unicodedata

PUNCT = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}.union(
    string.punctuation)


def normalize_answer(s):
    s = "".join(ch for ch in s.lower() if ch not in PUNCT)
    s = re.sub(r"\b(un|una|unos|unas|el|la|los|las)\b", " ", s)
    return " ".join(t for t in s.split() if t.strip() != "")


def f1_score(prediction, ground_truth):
    p, g = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    common = {t: min(p.count(t), g.count(t)) for t in set(p)}
    same = sum(common.values())
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def evaluate(dataset, predictions):
    f1 = em = total = 0
    for article in dataset["data"]:
        for par in article["paragraphs"]:
            for qa in par["qas"]:
                if qa.get("is_impossible"):
                    continue  # this scorer is for v1.1 files
                golds = [a["text"] for a in qa["answers"] if a["text"].strip() and a["answer_start"] >= 0]
                if not golds:
                    continue
                total += 1
                pred = predictions.get(qa["id"], "")
                em += max(float(normalize_answer(pred) == normalize_answer(g)) for g in golds)
                f1 += max(f1_score(pred, g) for g in golds)
    return {"exact_match": 100 * em / total, "f1": 100 * f1 / total, "n": total}


if __name__ == "__main__":
    data = json.load(open(sys.argv[1], encoding="utf-8"))
    preds = json.load(open(sys.argv[2], encoding="utf-8"))
    print(json.dumps(evaluate(data, preds)))
