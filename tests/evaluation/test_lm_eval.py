"""lm-evaluation-harness bridge: a 5-item multiple-choice task in local JSON, run on the real SmolLM2."""

from __future__ import annotations

import json

import pytest

from evaluation.scorers.base import EvalContext
from evaluation.scorers.lm_eval import LMEvalScorer, flatten_results

ITEMS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green", "plaid"], "answer": 0},
    {"question": "How many legs does a spider have?", "choices": ["three", "eight", "twelve"], "answer": 1},
    {"question": "Which animal says meow?", "choices": ["dog", "cow", "cat"], "answer": 2},
    {"question": "What is the capital of France?", "choices": ["Paris", "Berlin", "Madrid"], "answer": 0},
    {
        "question": "Water freezes at how many degrees Celsius?",
        "choices": ["fifty", "zero", "ninety"],
        "answer": 1,
    },
]


@pytest.fixture()
def tiny_task(tmp_path):
    """A custom lm-eval task (`dataset_path: json`, local `data_files`): works offline."""
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(item) for item in ITEMS))
    (tmp_path / "m2m_tiny_mc.yaml").write_text(
        "task: m2m_tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n"
    )
    return tmp_path


def _our_accuracy(model, tokenizer) -> float:
    """The same task scored by hand: argmax over choices of log p(" choice" | prompt)."""
    import torch

    correct = 0
    for item in ITEMS:
        context = f"Question: {item['question']}\nAnswer:"
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
        scores = []
        for choice in item["choices"]:
            ids = tokenizer(context + " " + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logprobs = model(torch.tensor([ids])).logits[0].log_softmax(-1)
            scores.append(sum(logprobs[i - 1, ids[i]].item() for i in range(len(context_ids), len(ids))))
        correct += int(max(range(len(scores)), key=scores.__getitem__) == item["answer"])
    return correct / len(ITEMS)


def test_flatten_results_keeps_numeric_metrics():
    results = {"results": {"t": {"alias": "t", "acc,none": 0.4, "acc_stderr,none": "N/A", "em,strict": 1}}}
    assert flatten_results(results) == {"eval/lm_eval/t_acc": 0.4, "eval/lm_eval/t_em_strict": 1.0}


def test_no_tasks_scores_nothing(tmp_path):
    assert LMEvalScorer(tasks=[]).score(EvalContext(None, None, tmp_path, {})) == {}


@pytest.mark.slow
def test_custom_task_matches_hand_computed_accuracy(eval_model_and_tokenizer, tiny_task, tmp_path):
    model, tokenizer = eval_model_and_tokenizer
    scorer = LMEvalScorer(tasks=["m2m_tiny_mc"], include_path=str(tiny_task), include_defaults=False, batch_size=4)
    scores = scorer.score(EvalContext(model, tokenizer, tmp_path, {}))
    assert set(scores) >= {"eval/lm_eval/m2m_tiny_mc_acc"}
    assert scores["eval/lm_eval/m2m_tiny_mc_acc"] == pytest.approx(_our_accuracy(model, tokenizer))
