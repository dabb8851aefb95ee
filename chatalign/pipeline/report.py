"""The pipeline's report: `report.md` (PNGs beside it) and a self-contained `report.html` (PNGs inlined as
base64 data URIs: one file that opens offline, mailable as is).

Sections: steps and their keys, the lineage of the final model, one section per stage in pipeline order (each
stage builds its own: `Stage.report_section`), the transfer to the independent sets (chatalign.pipeline.
transfer_section), example dialogues side by side (chatalign.pipeline.examples).
A section whose stage did not run says so; a section that fails to build says why and the others still render.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from pathlib import Path

from chatalign import registry
from chatalign.pipeline.examples import examples_section, makes_chat_model
from chatalign.pipeline.harness_section import harness_section
from chatalign.pipeline.report_sections import Ctx, StepInfo, rel, steps_table
from chatalign.pipeline.transfer_section import transfer_section
from chatalign.runs import write_text_atomic

log = logging.getLogger(__name__)


def _manifest(path: Path) -> dict | None:
    p = Path(path) / "manifest.json"
    try:
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def build_context(cfg, plan: list[dict], root: Path) -> Ctx:
    keys = {item["step"].name: item["key"] for item in plan}
    steps = [StepInfo(s.name, s.stage, cfg.step_dir(s.name), keys.get(s.name), s.enabled,
                      _manifest(cfg.step_dir(s.name)) if s.enabled else None) for s in cfg.steps]
    state_file = root / "pipeline_state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {"steps": {}}
    return Ctx(root=root, steps=steps, state=state)


# -- lineage --------------------------------------------------------------------------------------------------
def _describe(path: str, m: dict | None, step_of: dict[str, str], root: Path) -> str:
    where = f"`{rel(path, root)}`"
    if m is None:
        return f"model {where} (no manifest: a model directory given as input)"
    found = registry.find(m.get("stage"))
    stage = found.describe_run(m) if found else m.get("stage", "?")
    step = step_of.get(str(Path(path).resolve()))
    status = "" if m.get("status") == "finished" else f" [{m.get('status')}]"
    return (f"{stage}{f' — step {step}' if step else ''}: {where}, config hash {m.get('config_hash', '-')}"
            f"{status}")


def lineage_blocks(ctx: Ctx) -> list:
    blocks: list = [("h", 2, "Lineage of the final model")]
    finished = [s for s in ctx.steps if s.enabled and s.finished and makes_chat_model(s.stage)]
    if not finished:
        return blocks + [("p", "Stage not run: no model step has finished yet.")]
    final = finished[-1]
    step_of = {str(s.dir.resolve()): s.name for s in ctx.steps}
    items: list[tuple[int, str]] = []
    chain: list[str] = []
    seen: set[str] = set()

    def visit(path: str, depth: int, main: bool) -> None:
        key = str(Path(path).resolve()) if Path(path).exists() else path
        m = _manifest(Path(path))
        if key in seen:
            items.append((depth, _describe(path, m, step_of, ctx.root) + " (see above)"))
            return
        seen.add(key)
        items.append((depth, _describe(path, m, step_of, ctx.root)))
        if main:
            chain.append(step_of.get(key) or (m or {}).get("stage") or rel(path, ctx.root))
        parents = (m or {}).get("parents") or []
        model_name = ((m or {}).get("config") or {}).get("model", {}).get("name") if m else None
        if m is not None and not parents and model_name:
            items.append((depth + 1, f"base model `{model_name}`"))
            if main:
                chain.append(f"base `{model_name}`")
        for i, parent in enumerate(parents):
            visit(parent, depth + 1, main and i == 0)

    visit(str(final.dir), 0, True)
    blocks += [("p", "Final model: " + " ← ".join(f"**{c}**" if i == 0 else c for i, c in enumerate(chain))
                + ". Each run directory's manifest names its parents (first: the model it started from; then the "
                "reward models it used)."), ("list", items)]
    return blocks


# -- assembly -------------------------------------------------------------------------------------------------
def _safe(name: str, fn, *args) -> list:
    try:
        return fn(*args)
    except Exception as exc:  # one broken section must not cost the rest of the report
        log.warning("pipeline report: section %s failed: %s", name, exc, exc_info=True)
        return [("p", f"(this section could not be built: {type(exc).__name__}: {exc})")]


def build_blocks(cfg, plan: list[dict], root: Path) -> list:
    ctx = build_context(cfg, plan, root)
    seconds = {name: rec.get("seconds") for name, rec in ctx.state.get("steps", {}).items()}
    total = sum(v for v in seconds.values() if v)
    blocks: list = [("h", 1, f"Pipeline `{root.name}`"),
                    ("p", f"{sum(s.finished for s in ctx.steps if s.enabled)} of {sum(s.enabled for s in ctx.steps)} "
                          f"enabled steps finished; recorded step time {total / 60:.1f} min. Output: `{root}`."),
                    *steps_table(ctx, seconds)]
    blocks += _safe("lineage", lineage_blocks, ctx)
    for stage in registry.stages():  # the method is looked up inside _safe: importing it may fail too
        blocks += _safe(stage.name, lambda ctx, stage=stage: stage.report_section(ctx), ctx)
    blocks += _safe("transfer", transfer_section, ctx)
    blocks += _safe("harness", harness_section, ctx)
    blocks += _safe("examples", examples_section, ctx, getattr(cfg, "report_examples", 4))
    return blocks


def write_pipeline_report(cfg, plan: list[dict], root: Path) -> list[Path]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(cfg, plan, root)
    md, page = root / "report.md", root / "report.html"
    write_text_atomic(md, to_markdown(blocks))
    write_text_atomic(page, to_html(blocks, root))
    return [md, page]


# -- rendering ------------------------------------------------------------------------------------------------
def _md_cell(v) -> str:
    text = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    return text.replace("|", "\\|").replace("\n", "<br>")


def to_markdown(blocks: list) -> str:
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out += ["#" * b[1] + " " + b[2], ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "table":
            cols, rows = b[1], b[2]
            out.append("| " + " | ".join(cols) + " |")
            out.append("|" + "---|" * len(cols))
            out += ["| " + " | ".join(_md_cell(r.get(c)) for c in cols) + " |" for r in rows]
            out.append("")
        elif kind == "img":
            out += [f"![{b[2]}]({b[1]})", ""]
        elif kind == "list":
            out += ["  " * depth + "- " + text for depth, text in b[1]]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _inline(text: str) -> str:
    """Escape, then the two markdown spans the sections use: `code` and **bold**."""
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)


def _cell_html(v) -> str:
    text = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    return _inline(text).replace("\n", "<br>")


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}h1{border-bottom:2px solid #ddd}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top;text-align:left}th{background:#f4f4f4}code{background:#f4f4f4;padding:0 .2em;font-size:.9em}
img{max-width:100%;margin:.5em 0}ul{margin:.3em 0}td{max-width:28em;white-space:pre-wrap}"""


def _img_html(root: Path, name: str, alt: str) -> str:
    p = root / name
    if not p.is_file():
        return f"<p>(missing image {html.escape(name)})</p>"
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _list_html(items: list[tuple[int, str]]) -> str:
    """Nested <ul>, each sub-list inside its parent's <li>."""
    out: list[str] = []
    stack: list[int] = []  # depths of the open lists
    for d, text in items:
        if stack and d <= stack[-1]:
            out.append("</li>")
        while stack and d < stack[-1]:
            out.append("</ul></li>")
            stack.pop()
        if not stack or d > stack[-1]:
            out.append("<ul>")
            stack.append(d)
        out.append(f"<li>{_inline(text)}")
    out += ["</li></ul>"] * len(stack)
    return "\n".join(out)


def to_html(blocks: list, root: Path) -> str:
    title = next((b[2] for b in blocks if b[0] == "h"), "chatalign pipeline")
    body: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(c)}</th>" for c in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_cell_html(r.get(c))}</td>" for c in b[1]) + "</tr>"
                           for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(_img_html(root, b[1], b[2]))
        elif kind == "list":
            body.append(_list_html(b[1]))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
