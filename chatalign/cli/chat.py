"""`chatalign chat RUN`: a conversation with a model of a run, its answer printed token by token.

RUN is a stage run directory, a pipeline output directory (`--step` picks a step; default: the last finished
step that holds a chat model), any Hugging Face causal-LM directory, or `embedded`. The conversation is
rendered with the model's chat template every turn, so the model sees the whole history as it was trained to.
Decoding is our own KV-cached token loop (no generate thread): it stops on the template's end-of-turn token,
and Ctrl-C stops it cleanly between two tokens.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from chatalign.errors import UserError

HELP = "commands: /reset (forget the conversation), /system TEXT (set the system message), /exit"


# --- which model ---------------------------------------------------------------------------------------------


def _architectures(model_dir: Path) -> list[str]:
    try:
        return list(json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("architectures") or [])
    except (OSError, json.JSONDecodeError):
        return []


def is_chat_model(model_dir: Path) -> bool:
    """A causal LM (reward models are sequence classifiers: they score, they do not talk)."""
    archs = _architectures(model_dir)
    return not archs or any(a.endswith("ForCausalLM") for a in archs)


def pipeline_steps(root: Path) -> list[tuple[str, str]]:
    """(step name, status) of a pipeline output dir, in pipeline order; steps without a model are left out."""
    state_path = root / "pipeline_state.json"
    state = json.loads(state_path.read_text(encoding="utf-8")).get("steps", {}) if state_path.is_file() else {}
    names = list(state) + sorted(p.name for p in root.iterdir()
                                 if p.is_dir() and not p.name.startswith(".") and p.name not in state)
    return [(n, state.get(n, {}).get("status", "unknown")) for n in names if (root / n / "model" / "config.json").is_file()]


def is_pipeline_dir(root: Path) -> bool:
    if (root / "pipeline_state.json").is_file():
        return True
    return not (root / "config.json").is_file() and not (root / "model").is_dir() and bool(pipeline_steps(root))


def _list_steps(steps: list[tuple[str, str]], root: Path) -> str:
    return ", ".join(f"{n} ({s}{'' if is_chat_model(root / n / 'model') else ', reward model'})" for n, s in steps)


def resolve_chat_model(run: str, step: str | None = None) -> tuple[str, str]:
    """(model directory or hub id, a label for the banner)."""
    from chatalign.embedded import is_embedded
    from chatalign.models import resolve_model_path

    root = Path(run)
    if not is_embedded(run) and root.is_dir() and is_pipeline_dir(root):
        steps = pipeline_steps(root)
        if not steps:
            raise UserError(f"{run}: a pipeline directory with no finished model yet")
        if step is None:
            done = [n for n, s in steps if s == "finished" and is_chat_model(root / n / "model")]
            if not done:
                raise UserError(f"{run}: no finished step with a chat model; pick one with --step "
                                f"(steps: {_list_steps(steps, root)})")
            step = done[-1]
        elif step not in dict(steps):
            raise UserError(f"{run}: no step {step!r} with a model (steps: {_list_steps(steps, root)})")
        model_dir = root / step / "model"
        if not is_chat_model(model_dir):
            raise UserError(f"{run}: step {step} holds a reward model ({', '.join(_architectures(model_dir))}), "
                            f"not a chat model (steps: {_list_steps(steps, root)})")
        return str(model_dir), f"{run} step {step}"
    if step is not None:
        raise UserError(f"--step {step}: {run} is not a pipeline output directory")
    path = resolve_model_path(run)
    if Path(path).is_dir() and not is_chat_model(Path(path)):
        raise UserError(f"{run}: a reward model ({', '.join(_architectures(Path(path)))}), not a chat model")
    return path, run


# --- decoding ------------------------------------------------------------------------------------------------


def stop_token_ids(model, tokenizer, model_config=None) -> set[int]:
    """End of turn: the tokenizer's eos and `<|im_end|>` (ChatML), plus the generation config's eos ids."""
    from chatalign.rollout.engine import default_stop_token_ids

    ids = set(default_stop_token_ids(tokenizer))
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None) if model is not None else \
        getattr(model_config, "eos_token_id", None)
    ids.update([eos] if isinstance(eos, int) else (eos or []))
    return ids


def stream_tokens(model, prompt_ids: list[int], *, temperature: float, top_p: float, max_new_tokens: int,
                  stop_ids: set[int], generator=None) -> Iterator[int]:
    """Yield answer tokens one at a time (KV cache, batch of one) until an end-of-turn token or the limit."""
    import torch

    from chatalign.rollout.batch import cache_keyword, supports_logits_to_keep
    from chatalign.rollout.sampling import next_tokens

    device = next(model.parameters()).device
    keep = {"logits_to_keep": 1} if supports_logits_to_keep(model) else {}
    cache_kw = cache_keyword(model)  # the output names the cache as the forward does
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True, **keep)
        for _ in range(max_new_tokens):
            token = next_tokens(out.logits[:, -1, :], temperature, top_p, generator)
            t = int(token[0])
            if t in stop_ids:
                return
            yield t
            out = model(input_ids=token.view(1, 1), use_cache=True, **{cache_kw: out[cache_kw]})


class Detokenizer:
    """Text of a growing token list, handed out as new pieces; holds back a half multi-byte character."""

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.text = tokenizer, [], ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd") or not text.startswith(self.text):
            return ""
        piece, self.text = text[len(self.text):], text
        return piece

    def finish(self) -> str:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        piece = text[len(self.text):] if text.startswith(self.text) else ""
        self.text = text
        return piece


class ChatSession:
    """The conversation so far and the settings of one chat."""

    def __init__(self, model, tokenizer, *, system: str | None = None, temperature: float = 0.7,
                 top_p: float = 0.9, max_new_tokens: int = 512, seed: int = 0, engine=None, model_config=None):
        """`model`: a loaded causal LM (the native engine); or None with `engine`, a VLLMEngine, and
        `model_config`, the model's transformers config (its context length and end-of-turn token)."""
        import torch

        if temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
            raise UserError("chat: need --temperature >= 0, 0 < --top-p <= 1, --max-new-tokens >= 1")
        self.model, self.tokenizer, self.engine, self.seed = model, tokenizer, engine, seed
        self.system, self.temperature, self.top_p, self.max_new_tokens = system, temperature, top_p, max_new_tokens
        self.stop_ids = stop_token_ids(model, tokenizer, model_config)
        self.generator = None if engine else torch.Generator(
            device=next(model.parameters()).device).manual_seed(seed)
        self.turns: list[dict] = []
        self.max_context = getattr(model_config or model.config, "max_position_embeddings", None)

    @property
    def messages(self) -> list[dict]:
        return ([{"role": "system", "content": self.system}] if self.system else []) + self.turns

    def reset(self) -> None:
        self.turns = []

    def set_system(self, text: str | None) -> None:
        self.system = text or None

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The rendered prompt; the oldest rounds are dropped while it does not fit the model's context."""
        from chatalign.text.masks import drop_oldest_round, encode_prompt

        ids = encode_prompt(self.tokenizer, messages)
        while self.max_context and len(ids) + self.max_new_tokens > self.max_context:
            shorter = drop_oldest_round(messages)
            if shorter is None:
                raise UserError(f"chat: the prompt ({len(ids)} tokens) + --max-new-tokens {self.max_new_tokens} "
                                f"exceed the model's context of {self.max_context} tokens")
            messages = shorter
            ids = encode_prompt(self.tokenizer, messages)
        return ids

    def answer_tokens(self, prompt_ids: list[int]) -> Iterator[int]:
        settings = {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens}
        if self.engine is None:
            return stream_tokens(self.model, prompt_ids, stop_ids=self.stop_ids, generator=self.generator,
                                 **settings)
        from chatalign.rollout.vllm_engine import request_seed

        # one seed per turn: the same conversation with the same --seed gets the same answers
        return self.engine.stream(prompt_ids, stop_token_ids=sorted(self.stop_ids),
                                  seed=request_seed(self.seed, len(self.turns) // 2), **settings)

    def reply(self, text: str, on_text: Callable[[str], None] | None = None) -> str:
        """Answer `text`, calling `on_text` with each new piece; the exchange joins the history when done."""
        messages = [*self.messages, {"role": "user", "content": text}]
        detok = Detokenizer(self.tokenizer)
        for token in self.answer_tokens(self.prompt_ids(messages)):
            piece = detok.push(token)
            if piece and on_text:
                on_text(piece)
        tail = detok.finish()
        if tail and on_text:
            on_text(tail)
        answer = detok.text.strip()
        self.turns += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        return answer


# --- the command ---------------------------------------------------------------------------------------------


def load_session(args) -> tuple[ChatSession, str]:
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.text.templates import apply_named_template

    path, label = resolve_chat_model(args.run, args.step)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the weight-loading bar would sit between the banner and the chat
    tokenizer = load_tokenizer(path)
    if args.chat_template:
        apply_named_template(tokenizer, args.chat_template)
    elif not getattr(tokenizer, "chat_template", None):
        raise UserError(f"{path}: the tokenizer has no chat template; pass --chat-template chatml|llama2|zephyr")
    settings = dict(system=args.system, temperature=args.temperature, top_p=args.top_p,
                    max_new_tokens=args.max_new_tokens, seed=args.seed)
    if getattr(args, "backend", "native") == "vllm":
        return ChatSession(None, tokenizer, engine=chat_engine(path, args),
                           model_config=load_model_config(path), **settings), f"{label} ({path}, vLLM)"
    model = load_causal_lm(path, dtype=args.dtype)
    import torch

    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    return ChatSession(model, tokenizer, **settings), f"{label} ({path})"


def chat_engine(path: str, args):
    """A vLLM engine over the chat model (`--backend vllm`); a one-line error when vLLM is not installed."""
    import importlib.util

    from chatalign.rollout.generation_config import MISSING_VLLM
    from chatalign.rollout.vllm_engine import VLLMEngine

    if importlib.util.find_spec("vllm") is None:
        raise UserError(MISSING_VLLM.replace("generation.backend: vllm", "chat --backend vllm"))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # vLLM logs to stdout: keep the conversation readable
    return VLLMEngine(path, dtype=args.dtype, memory_share=args.memory_share)


def load_model_config(path: str):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path)


def _print_piece(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def interactive(session: ChatSession, read_line: Callable[[], str | None]) -> None:
    """The loop: a line in, an answer streamed out; commands start with `/`. Ends on /exit or end of input."""
    while True:
        line = read_line()
        if line is None:
            return
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            session.reset()
            print("(conversation cleared)", file=sys.stderr)
            continue
        if text == "/system" or text.startswith("/system "):
            session.set_system(text[len("/system"):].strip())
            print(f"(system message {'set' if session.system else 'removed'})", file=sys.stderr)
            continue
        if text.startswith("/"):
            print(f"(unknown command {text.split()[0]}; {HELP})", file=sys.stderr)
            continue
        session.reply(text, _print_piece)
        _print_piece("\n")


def _reader(tty: bool) -> Callable[[], str | None]:
    def read() -> str | None:
        try:
            if tty:
                return input("you> ")
            line = sys.stdin.readline()
            return line if line else None
        except EOFError:
            return None

    return read


def cmd_chat(args) -> int:
    session, label = load_session(args)
    if args.prompt is not None:
        session.reply(args.prompt, _print_piece)
        _print_piece("\n")
        return 0
    tty = sys.stdin.isatty()
    try:  # the banner inside: once it is out, a Ctrl-C leaves cleanly (a script may wait for it, then signal)
        print(f"chatting with {label}\n{HELP}", file=sys.stderr, flush=True)
        interactive(session, _reader(tty))
    except KeyboardInterrupt:  # Ctrl-C: leave cleanly, mid-answer or at the prompt
        _print_piece("\n")
    return 0
