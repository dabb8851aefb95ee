"""Fixtures of the core tests: models for the rollout engine; a plugin stage for the registry and the pipeline."""

import pytest
import torch

from ..conftest import tiny_llama


@pytest.fixture(scope="module")
def sharp_model(smol_tokenizer):
    """The tiny Llama with weights drawn wide (std 0.3): its greedy answers vary from token to token and its
    top-2 logits are far apart, so a wrong position id or mask changes the tokens (the standard init repeats
    one token and would hide such bugs)."""
    model = tiny_llama(smol_tokenizer)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3, generator=g)
    model.generation_config.eos_token_id = None
    return model.eval()


TOY_STAGE = '''"""A stage from outside chatalign, found only through its entry point: it counts the words of a file."""
import json
from pathlib import Path

from chatalign.config import RecipePath, RunPath, StrictModel
from chatalign.errors import UserError
from chatalign.stage import Stage


class ToyConfig(StrictModel):
    stage: str = "toy"
    output_dir: RunPath = "runs/toy"
    words: RecipePath
    fail: str = "no"  # no | user | interrupt


class ToyStage(Stage):
    name = "toy"
    help = "count the words of a file (a plugin stage)"
    order = 15

    def config_class(self):
        return ToyConfig

    def dry_run(self, cfg):
        return {"words": len(Path(cfg.words).read_text().split())}

    def run(self, cfg, resume=False, progress=True):
        if cfg.fail == "user":
            raise UserError("toy: told to fail")
        if cfg.fail == "interrupt":
            raise KeyboardInterrupt
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary = {"words": self.dry_run(cfg)["words"], "resumed": resume, "progress": progress}
        (out / "manifest.json").write_text(json.dumps({"status": "finished", "stage": "toy", "metrics": summary}))
        return summary


STAGE = ToyStage()
'''


@pytest.fixture
def toy_stage(tmp_path_factory, monkeypatch):
    """A plugin package on sys.path: toy_stage.py and a dist-info whose entry point adds the `toy` stage."""
    from chatalign import registry

    site = tmp_path_factory.mktemp("site")
    (site / "toy_stage.py").write_text(TOY_STAGE)
    info = site / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[chatalign.stages]\ntoy = toy_stage:STAGE\n")
    monkeypatch.syspath_prepend(str(site))
    registry.reload()
    yield site
    registry.reload()  # the next lookup reads the entry points again, without the plugin
