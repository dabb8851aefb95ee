"""Named jinja chat templates (chatml, llama2, zephyr) and the rule that picks one for a tokenizer.

The templates write the tokenizer's own `bos_token` / `eos_token` rather than literal `<s>` / `</s>`: the
end-of-turn marker must be one token the model can emit (generation stops on `eos_token_id`), and a literal
`</s>` in a vocabulary without it would be split into `</`, `s`, `>`. With a Llama tokenizer the output is
exactly Meta's format.

None of these has `{% generation %}` markers; `chatalign.text.masks` derives loss masks from rendered prefixes
instead, which needs each template to render a conversation prefix as a prefix of the whole conversation.
"""

from __future__ import annotations

from chatalign.errors import ConfigError

# Plain ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, `<|im_start|>assistant\n` as the generation
# prompt, and no system message unless the conversation has one (SmolLM2's own template, which the embedded model
# keeps with `chat_template: model`, adds "You are a helpful AI assistant named SmolLM..." to every conversation
# without one: right for SmolLM, wrong for any other model given `chat_template: chatml`).
CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Meta's reference (llama/generation.py, chat_completion): the system prompt is folded into the first user
# message between <<SYS>> markers; every user/assistant pair is `<s>[INST] u [/INST] a </s>`; contents are
# stripped. `[/INST]` already ends the prompt, so there is no separate generation prompt.
LLAMA2 = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_text = messages[0]['content'].strip() -%}"
    "{%- set turns = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_text = none -%}"
    "{%- set turns = messages -%}"
    "{%- endif -%}"
    "{%- for message in turns -%}"
    "{%- if message['role'] not in ['user', 'assistant'] -%}"
    "{{ raise_exception('llama2 template: only the first message may be a system message') }}"
    "{%- endif -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('llama2 template: after the system message, roles must alternate user/assistant') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.first and system_text is not none -%}"
    "{%- set text = '<<SYS>>\n' + system_text + '\n<</SYS>>\n\n' + message['content'].strip() -%}"
    "{%- else -%}"
    "{%- set text = message['content'].strip() -%}"
    "{%- endif -%}"
    "{{ (bos_token or '') + '[INST] ' + text + ' [/INST]' }}"
    "{%- else -%}"
    "{{ ' ' + message['content'].strip() + ' ' + (eos_token or '') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# HuggingFaceH4/zephyr: `<|role|>\n{content}</s>\n` per message, `<|assistant|>\n` as the generation prompt.
ZEPHYR = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + (eos_token or '') + '\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)

NAMED_TEMPLATES: dict[str, str] = {"chatml": CHATML, "llama2": LLAMA2, "zephyr": ZEPHYR}
KEEP_MODEL_TEMPLATE = "model"


def apply_named_template(tokenizer, name: str | None):
    """Set `tokenizer.chat_template` from `name`; None or "model" keeps the model's own (which must exist)."""
    if name is None or name == KEEP_MODEL_TEMPLATE:
        if not getattr(tokenizer, "chat_template", None):
            source = getattr(tokenizer, "name_or_path", "") or "this model"
            raise ConfigError(
                f"tokenizer of {source} has no chat template: set `chat_template` in the recipe "
                f"(one of {', '.join(sorted(NAMED_TEMPLATES))})")
        return tokenizer
    if name not in NAMED_TEMPLATES:
        raise ConfigError(f"chat_template {name!r} is not known: use one of "
                          f"{', '.join(sorted(NAMED_TEMPLATES))} or {KEEP_MODEL_TEMPLATE!r}")
    tokenizer.chat_template = NAMED_TEMPLATES[name]
    return tokenizer
