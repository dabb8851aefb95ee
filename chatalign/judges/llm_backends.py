"""Where the LLM judge's words come from: a local Hugging Face causal LM, or an OpenAI-compatible chat-completions
endpoint (llama.cpp server, vLLM, TGI, Ollama, a hosted API). Both answer greedily (temperature 0), so the same
prompts give the same verdicts where the server is deterministic.

The endpoint is reached with the standard library (urllib): POST <base_url>/chat/completions with
{"model", "messages", "temperature": 0, "max_tokens"}; the API key, if any, is read from the environment variable
the config names, never from the recipe. An unreachable server, an HTTP error or a malformed reply is one line
naming the URL (a UserError), not a traceback.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from chatalign.errors import ConfigError, UserError


class HFChatBackend:
    """Greedy answers of a local causal LM (a model directory, a run directory or `embedded`)."""

    def __init__(self, model_name: str, max_new_tokens: int = 96, batch_size: int = 8, model=None, tokenizer=None):
        from chatalign.models import load_causal_lm, load_tokenizer

        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model_name)
        self.model = model if model is not None else load_causal_lm(model_name, "float32").eval()
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def complete(self, conversations: list[list[dict]], max_new_tokens: int | None = None) -> list[str]:
        from chatalign.rollout.engine import generate_rollouts
        from chatalign.text.masks import encode_prompt

        if not conversations:
            return []
        ids = [encode_prompt(self.tokenizer, c) for c in conversations]
        outs = generate_rollouts(self.model, self.tokenizer, ids, max_new_tokens=max_new_tokens or self.max_new_tokens,
                                 temperature=0.0, batch_size=self.batch_size, return_logprobs=False)
        return [r.text for r in sorted(outs, key=lambda r: r.prompt_index)]


class OpenAIChatBackend:
    """An OpenAI-compatible /chat/completions endpoint, one request per conversation."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, timeout_s: float = 60.0,
                 max_new_tokens: int = 96):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.max_new_tokens = max_new_tokens
        self.api_key = None
        if api_key_env:
            self.api_key = os.environ.get(api_key_env)
            if not self.api_key:
                raise ConfigError(f"judge.api_key_env={api_key_env}: that environment variable is not set")

    def _request(self, messages: list[dict], max_new_tokens: int) -> urllib.request.Request:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": max_new_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def complete_one(self, messages: list[dict], max_new_tokens: int | None = None) -> str:
        request = self._request(messages, max_new_tokens or self.max_new_tokens)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace").replace("\n", " ")
            raise UserError(f"LLM judge at {self.url}: HTTP {exc.code} {exc.reason}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"LLM judge at {self.url} is unreachable: {reason} (is the server running? "
                            "judge.base_url ends with /v1 for most servers)") from None
        return _reply_text(payload, self.url)

    def complete(self, conversations: list[list[dict]], max_new_tokens: int | None = None) -> list[str]:
        return [self.complete_one(c, max_new_tokens) for c in conversations]


def _reply_text(payload: bytes, url: str) -> str:
    """choices[0].message.content of a chat-completions reply; a UserError naming the URL otherwise."""
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"LLM judge at {url}: not a chat-completions reply: {payload[:200]!r}") from None
    if not isinstance(content, str):
        raise UserError(f"LLM judge at {url}: the reply's message content is not text: {content!r}")
    return content


def backend_for(cfg):
    """The backend an `LLMJudgeConfig` names."""
    if cfg.backend == "openai":
        return OpenAIChatBackend(cfg.base_url, cfg.model, cfg.api_key_env, cfg.timeout_s, cfg.max_new_tokens)
    return HFChatBackend(cfg.model, cfg.max_new_tokens, cfg.batch_size)
