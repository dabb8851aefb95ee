"""`chatalign rlhf status RUNS_DIR`: the chains of RLHF rounds found below a directory, with headline metrics."""

from __future__ import annotations

from pathlib import Path

from chatalign.rlhf.lineage import STAGE, chain, read_manifest

HEADLINE = (("heldout_reward_this", "held-out R_c"), ("gain_vs_previous", "gain vs prev"),
            ("gain_se_vs_previous", "± SE"), ("win_rate_vs_previous", "win vs prev"),
            ("win_rate_vs_sft", "win vs SFT"), ("kl_vs_previous", "KL vs prev (nats/answer)"),
            ("ppo_iterations", "PPO iters"), ("ppo_last_kl", "KL"),
            ("rs_selected_reward_mean", "RS best-of-K R_c"))


def find_rounds(root: Path, depth: int = 3) -> list[Path]:
    """Run directories with an RLHF-round manifest at or below `root` (`depth` levels)."""
    found = []
    frontier = [root]
    for _ in range(depth + 1):
        nxt = []
        for d in frontier:
            m = read_manifest(d)
            if m and m.get("stage") == STAGE:
                found.append(d.resolve())
                continue  # a round's own subfolders (rs_sft/, ppo/) are not rounds
            nxt.extend(p for p in sorted(d.iterdir()) if p.is_dir() and not p.name.startswith("."))
        frontier = nxt
    return found


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def status_text(root: str | Path) -> str:
    root = Path(root)
    rounds = find_rounds(root)
    if not rounds:
        return f"no RLHF rounds below {root}"
    # a chain per round that no other round started from (the newest of each line)
    started_from = set()
    for r in rounds:
        info = (read_manifest(r) or {}).get("rlhf") or {}
        if info.get("start"):
            started_from.add(str(Path(info["start"]).resolve()) if Path(info["start"]).exists() else info["start"])
    heads = [r for r in rounds if str(r) not in started_from]
    lines = []
    for head in heads:
        links = chain(str(head))
        lines.append(f"chain ending at {head}:")
        for link in reversed(links):
            if not link.is_round:
                lines.append(f"  start: {link.stage or 'model'} {link.path}")
                continue
            m = read_manifest(link.path) or {}
            metrics = m.get("metrics") or {}
            head_metrics = ", ".join(f"{label} {_fmt(metrics.get(key))}" for key, label in HEADLINE
                                     if metrics.get(key) is not None)
            lines.append(f"  round {link.round} [{link.mode}] {link.status}: {link.path}"
                         + (f"\n      {head_metrics}" if head_metrics else ""))
    return "\n".join(lines)
