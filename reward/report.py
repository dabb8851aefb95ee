"""The reward run's report.md: data, training curves and the held-out evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.plots import markdown_table, plot_curves
from chatalign.reward.eval_report import format_tables
from chatalign.runs import write_text_atomic


def write_report(run, cfg, data_stats: dict, summary: dict, evaluation: dict | None) -> None:
    records = run.read_metrics()
    plot_curves(records, ["loss", "accuracy", "reward_gap", "lr"], run.path / "training.png",
                f"{cfg.kind} reward model training")
    src_rows = [{"source": k, **{c: v.get(c, "") for c in ("usable", "drawn", "rows_skipped",
                                                          "excluded_chosen_unsafe_rejected_safe")}}
                for k, v in data_stats["sources"].items()]
    lines = [f"# {cfg.kind.capitalize()} reward model `{run.path.name}`", "",
             f"Initialised from `{cfg.model.name}`; scalar head read at the conversation's last token (see "
             f"[How this RM is read](#how-this-rm-is-read)); ranking loss "
             f"-log(sigmoid(r_c - r_r - m)) with margin table `{json.dumps(data_stats['margin_table'])}`, "
             f"default strength `{cfg.default_strength}`.", "",
             "## Data", "",
             markdown_table(src_rows, ["source", "usable", "drawn", "rows_skipped",
                                       "excluded_chosen_unsafe_rejected_safe"]),
             f"Mix: {data_stats['mix_total']} pairs; {data_stats['pairs']} trained "
             f"({data_stats['too_long']} too long for max_seq_len); strengths {data_stats['strengths']}; "
             f"safety bins {data_stats['safety_bins']}; median side length {data_stats['median_length']} tokens.",
             "", "## Training", "",
             f"{summary['steps']} optimizer steps of up to {cfg.train.global_batch_pairs} pairs; final loss "
             f"{_num(summary.get('final_loss'))}, final batch accuracy {_num(summary.get('final_train_accuracy'))}, "
             f"{_num(summary.get('pairs_per_s'))} pairs/s.", "", "![training](training.png)", ""]
    lines += reading_section(run.model_dir, cfg.model.chat_template)
    if evaluation:
        lines += ["## Held-out evaluation", "", format_tables(evaluation), "",
                  "![accuracy](eval_accuracy.png)", "", "![scores](eval_scores.png)", ""]
    write_text_atomic(run.path / "report.md", "\n".join(lines) + "\n")


def reading_section(model_dir: Path, template_name: str | None) -> list[str]:
    """Where the saved RM reads and how to score with it through the standard API (from `model_dir` itself)."""
    from transformers import AutoConfig

    from chatalign.models import load_tokenizer
    from chatalign.reward.model import template_end_token_ids

    tok = load_tokenizer(model_dir)
    pad = AutoConfig.from_pretrained(model_dir).pad_token_id
    pad_text = f"{pad} ({tok.decode([pad])!r})" if pad is not None else "unset"
    probe = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    ending = tok.apply_chat_template(probe, tokenize=False)[-24:]
    [end] = template_end_token_ids(tok)
    template = f"`{template_name}`" if template_name and template_name != "model" else "the model's own"
    return ["## How this RM is read", "",
            "Trained, evaluated and saved to be read at the **last token of the whole conversation** (prompt and "
            f"answer) as `apply_chat_template(messages)` renders it with the RM's chat template ({template}, saved "
            f"with its tokenizer; no generation prompt): that text ends `{ending!r}`, read at token "
            f"{tok.decode([end])!r} (id {end}). `config.json` sets `pad_token_id` = {pad_text}, not "
            "that token, so the standard forward, which reads the rightmost non-pad token, reads the same "
            "position, also on batches padded on either side.", "",
            "```python", "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
            f'rm = AutoModelForSequenceClassification.from_pretrained("{model_dir}")',
            f'tok = AutoTokenizer.from_pretrained("{model_dir}")',
            f"messages = {probe!r}",
            'batch = tok.apply_chat_template(messages, return_tensors="pt", return_dict=True)',
            "score = rm(**batch).logits[0, 0]  # = chatalign.reward.load_scorer(...).score(...)",
            "```", ""]


def append_eval_section(report_md: Path, heading: str, body: str) -> None:
    """Add (or replace) a `## heading` section of an existing report.md (chatalign eval reward)."""
    text = report_md.read_text(encoding="utf-8") if report_md.is_file() else ""
    marker = f"\n## {heading}\n"
    if marker in text:
        head, _, rest = text.partition(marker)
        nxt = rest.find("\n## ")
        text = head + (rest[nxt:] if nxt >= 0 else "\n")
    write_text_atomic(report_md, text.rstrip("\n") + "\n" + marker + "\n" + body.rstrip("\n") + "\n")


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"
