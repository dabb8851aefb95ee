"""GAtt numbers derived from the run's files: the manifest's metrics and the rows of independent.json (suite
"gatt"), from eval_base.json / eval_before.json / eval_after.json (`chatalign.gatt.stage_eval`)."""

from __future__ import annotations

from chatalign.evaluation.record import Figures, IndependentRow

BASE, BEFORE, AFTER = "base model", "before GAtt", "after GAtt"
COLUMNS = {"base": BASE, "before": BEFORE, "after": AFTER}
PLACED = {"system": "instruction as the system message", "first_user": "instruction in the first user message"}


def synthesis_metrics(synth: dict) -> dict:
    s, r = synth["synthesis"], synth["rows"]
    return {"synth_rows": r["rows"], "synth_rejected": r["rejected"], "synth_answers": s["turns_answered"],
            "synth_repaired": s.get("turns_repaired", 0), "synth_rows_repaired": r.get("rows_repaired", 0),
            "synth_pass_rate": round(s["turns_passing"] / max(1, s["turns_answered"]), 4)}


def eval_metrics(results: dict[str, dict]) -> dict:
    """{<before|after|base>_<suite>_<placement>_<mean_t4_20|t20>: adherence 0-1} for the overall rate."""
    out = {}
    for column, label in COLUMNS.items():
        for name, group in results.get(label, {}).get("groups", {}).items():
            s = group["summary"]["all"]
            stem = f"{column}_{name.replace('/', '_')}"
            if s["mean_from"] is not None:
                out[f"{stem}_mean_t{s['first']}_{s['last_turn']}"] = round(s["mean_from"], 4)
            if s["last"] is not None:
                out[f"{stem}_t{s['last_turn']}"] = round(s["last"], 4)
    return out


def _groups_by_column(results: dict[str, dict], group: str, base_is_start: bool) -> dict[str, dict | None]:
    """{"base", "before", "after": that model's result for `group`, or None}; the start stands for the base model
    where they are the same model."""
    found = {c: results.get(label, {}).get("groups", {}).get(group) for c, label in COLUMNS.items()}
    if base_is_start:
        found["base"] = found["before"]
    return found


def _columns(results: dict[str, dict], group: str, key: str, stat: str, base_is_start: bool) -> Figures | None:
    """Base, before and after (shares, or None where not measured) and n of one summary statistic; None
    without the group."""
    found = _groups_by_column(results, group, base_is_start)
    if not any(found.values()):
        return None
    cols: dict = {c: g["summary"].get(key, {}).get(stat) if g else None for c, g in found.items()}
    any_group = next(g for g in found.values() if g)
    summary = any_group["summary"].get(key, {})
    if stat == "last":
        cols["n"] = summary.get("n_last", 0)
    else:  # dialogues carrying the kind (all of them for "all"), counted at turn 1
        first = any_group["by_turn"].get("1", {})
        cols["n"] = first.get("n", 0) if key == "all" else first.get(f"n_{key}", 0)
    return Figures(**cols)


def independent_rows(results: dict[str, dict], placements, base_is_start: bool) -> list[IndependentRow]:
    """independent.json rows: per placement, overall adherence (mean over turns 4-20, at turn 20) on the
    held-out kinds beside the training kinds' (in-distribution), then each held-out kind's mean."""
    rows = []
    for p in placements:
        ind, dist = f"independent/{p}", f"in_distribution/{p}"
        any_res = next((r["groups"][ind] for r in results.values() if ind in r.get("groups", {})), None)
        if any_res is None:
            continue
        s = any_res["summary"]["all"]
        span = f"turns {s['first']}-{s['last_turn']}"
        for stat, what, key in (("mean_from", f"mean over {span}", f"t{s['first']}_{s['last_turn']}"),
                                ("last", f"at turn {s['last_turn']}", f"t{s['last_turn']}")):
            rows.append(IndependentRow(
                suite="gatt", metric=f"GAtt adherence, {PLACED[p]}, {what}", key=f"gatt_{p}_{key}",
                higher_is_better=True, unit="%", independent=_columns(results, ind, "all", stat, base_is_start),
                in_distribution=_columns(results, dist, "all", stat, base_is_start), judge="rules",
                note="independent: instruction kinds held out from training; in-distribution: the training "
                     "kinds on the bundled held-out dialogues"))
        rows += _turn1_rows(results, p, ind, s["first"], base_is_start)
        for kind in [k for k in any_res["summary"] if k != "all"]:
            rows.append(IndependentRow(
                suite="gatt", metric=f"GAtt adherence, held-out kind {kind}, {PLACED[p]}, mean over {span}",
                key=f"gatt_{p}_{kind}_t{s['first']}_{s['last_turn']}", higher_is_better=True, unit="%",
                independent=_columns(results, ind, kind, "mean_from", base_is_start), judge="rules"))
    return rows


def _turn1_rows(results: dict[str, dict], p: str, group: str, first: int, base_is_start: bool
                ) -> list[IndependentRow]:
    """Adherence at turn 1 (can the model follow the held-out kind at all?) and, of the dialogues that kept the
    instruction there, the share still keeping it from turn `first` on (what GAtt is for); [] for results without them."""
    found = _groups_by_column(results, group, base_is_start)
    present = [g for g in found.values() if g]
    if not present or "retention" not in present[0] or "1" not in present[0]["by_turn"]:
        return []
    n = present[0]["by_turn"]["1"]["n"]
    at_1 = Figures(n=n, **{c: g["by_turn"]["1"]["all"] if g else None for c, g in found.items()})
    kept = {c: g["retention"] if g and "retention" in g else None for c, g in found.items()}
    retained = Figures(n=n, **{c: r["mean_from"] if r else None for c, r in kept.items()})
    counts = ", ".join(f"{c} {r['kept_at_1']}" + (f" (to turn {r['last_turn']})" if r.get("last_turn") else "")
                       for c, r in kept.items() if r)
    return [
        IndependentRow(suite="gatt", metric=f"GAtt adherence, {PLACED[p]}, at turn 1", key=f"gatt_{p}_t1",
                       higher_is_better=True, unit="%", independent=at_1, judge="rules",
                       note="the instruction just given: whether the model can follow a held-out kind at all"),
        IndependentRow(suite="gatt", metric=f"GAtt retention, {PLACED[p]}: kept from turn {first} on when kept at turn 1",
                       key=f"gatt_{p}_retained", higher_is_better=True, unit="%", independent=retained,
                       judge="rules", note=f"n: dialogues; of them kept at turn 1: {counts}; the mean runs to the "
                                           "last turn those dialogues reach, which can be short of the others'")]
