"""Loss masks from rendered prefixes, checked token by token on the real SmolLM2 tokenizer (chatml, llama2, zephyr)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from chatalign.errors import ConfigError, DataError
from chatalign.text.masks import (
    drop_oldest_round,
    encode_chat,
    encode_chat_batch,
    encode_prompt,
    mask_from_offsets,
)
from chatalign.text.templates import CHATML, apply_named_template

SYS = {"role": "system", "content": "Be brief."}
U1 = {"role": "user", "content": "Hi there"}
A1 = {"role": "assistant", "content": "Hello!"}
U2 = {"role": "user", "content": "Name a color"}
A2 = {"role": "assistant", "content": "Blue."}
CONV = [SYS, U1, A1, U2, A2]

IM_START, IM_END = "<|im_start|>", "<|im_end|>"


def named(tok, name):
    t = copy.deepcopy(tok)  # the session fixture is shared: never change its template
    return apply_named_template(t, name)


@pytest.fixture(scope="module")
def llama2_tok(smol_tokenizer):
    return named(smol_tokenizer, "llama2")


@pytest.fixture(scope="module")
def zephyr_tok(smol_tokenizer):
    return named(smol_tokenizer, "zephyr")


def pieces(tok, enc):
    return [(tok.decode([i]), m) for i, m in zip(enc.input_ids, enc.loss_mask, strict=True)]


def trained_text(tok, enc):
    return tok.decode([i for i, m in zip(enc.input_ids, enc.loss_mask, strict=True) if m], skip_special_tokens=False)


# Hand-checked: 1 exactly on the answer and its end-of-turn token; the header `<|im_start|>assistant\n`,
# system and user tokens (their `<|im_end|>` included) and the newline after each turn are 0.
CHATML_PIECES = [
    (IM_START, 0), ("system", 0), ("\n", 0), ("Be", 0), (" brief", 0), (".", 0), (IM_END, 0), ("\n", 0),
    (IM_START, 0), ("user", 0), ("\n", 0), ("Hi", 0), (" there", 0), (IM_END, 0), ("\n", 0),
    (IM_START, 0), ("ass", 0), ("istant", 0), ("\n", 0), ("Hello", 1), ("!", 1), (IM_END, 1), ("\n", 0),
    (IM_START, 0), ("user", 0), ("\n", 0), ("Name", 0), (" a", 0), (" color", 0), (IM_END, 0), ("\n", 0),
    (IM_START, 0), ("ass", 0), ("istant", 0), ("\n", 0), ("Blue", 1), (".", 1), (IM_END, 1), ("\n", 0),
]

# `<s>`/`</s>` are the tokenizer's bos/eos, here SmolLM2's `<|im_start|>`/`<|im_end|>`. The space before an
# answer is the template's (`[/INST] answer </s>`) and rides on the first answer token, which is trained.
LLAMA2_PIECES = [
    (IM_START, 0), ("[", 0), ("INST", 0), ("]", 0), (" <<", 0), ("S", 0), ("YS", 0), (">>", 0), ("\n", 0),
    ("Be", 0), (" brief", 0), (".", 0), ("\n", 0), ("<", 0), ("</", 0), ("S", 0), ("YS", 0), (">>", 0),
    ("\n", 0), ("\n", 0), ("Hi", 0), (" there", 0), (" [", 0), ("/", 0), ("INST", 0), ("]", 0),
    (" Hello", 1), ("!", 1), (" ", 1), (IM_END, 1),
    (IM_START, 0), ("[", 0), ("INST", 0), ("]", 0), (" Name", 0), (" a", 0), (" color", 0), (" [", 0),
    ("/", 0), ("INST", 0), ("]", 0), (" Blue", 1), (".", 1), (" ", 1), (IM_END, 1),
]

ZEPHYR_PIECES = [
    ("<", 0), ("|", 0), ("system", 0), ("|", 0), (">", 0), ("\n", 0), ("Be", 0), (" brief", 0), (".", 0),
    (IM_END, 0), ("\n", 0),
    ("<", 0), ("|", 0), ("user", 0), ("|", 0), (">", 0), ("\n", 0), ("Hi", 0), (" there", 0), (IM_END, 0),
    ("\n", 0),
    ("<", 0), ("|", 0), ("ass", 0), ("istant", 0), ("|", 0), (">", 0), ("\n", 0), ("Hello", 1), ("!", 1),
    (IM_END, 1), ("\n", 0),
    ("<", 0), ("|", 0), ("user", 0), ("|", 0), (">", 0), ("\n", 0), ("Name", 0), (" a", 0), (" color", 0),
    (IM_END, 0), ("\n", 0),
    ("<", 0), ("|", 0), ("ass", 0), ("istant", 0), ("|", 0), (">", 0), ("\n", 0), ("Blue", 1), (".", 1),
    (IM_END, 1), ("\n", 0),
]


def test_chatml_mask_token_by_token(smol_tokenizer):
    enc = encode_chat(smol_tokenizer, CONV)
    assert pieces(smol_tokenizer, enc) == CHATML_PIECES
    assert trained_text(smol_tokenizer, enc) == "Hello!<|im_end|>" + "Blue.<|im_end|>"
    assert enc.n_trained == 6 and not enc.truncated
    # same ids as the tokenizer's own apply_chat_template: we add no second BOS and no extra tokens
    assert enc.input_ids == smol_tokenizer.apply_chat_template(CONV, tokenize=True, return_dict=False)


def test_llama2_mask_token_by_token(llama2_tok):
    enc = encode_chat(llama2_tok, CONV)
    assert pieces(llama2_tok, enc) == LLAMA2_PIECES
    assert trained_text(llama2_tok, enc) == " Hello! <|im_end|>" + " Blue. <|im_end|>"


def test_llama2_with_llama_special_tokens_is_metas_format(smol_tokenizer):
    tok = named(smol_tokenizer, "llama2")
    tok.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>"})
    text = tok.apply_chat_template(CONV, tokenize=False)
    assert text == ("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! </s>"
                    "<s>[INST] Name a color [/INST] Blue. </s>")
    enc = encode_chat(tok, CONV)
    assert trained_text(tok, enc) == " Hello! </s> Blue. </s>"
    eos = tok.convert_tokens_to_ids("</s>")
    assert [m for i, m in zip(enc.input_ids, enc.loss_mask, strict=True) if i == eos] == [1, 1]
    assert all(m == 0 for i, m in zip(enc.input_ids, enc.loss_mask, strict=True) if i == tok.convert_tokens_to_ids("<s>"))


def test_zephyr_mask_token_by_token(zephyr_tok):
    enc = encode_chat(zephyr_tok, CONV)
    assert pieces(zephyr_tok, enc) == ZEPHYR_PIECES
    assert trained_text(zephyr_tok, enc) == "Hello!<|im_end|>" + "Blue.<|im_end|>"


def test_end_of_turn_is_pad_and_still_trained(smol_tokenizer):
    im_end = smol_tokenizer.convert_tokens_to_ids(IM_END)
    assert smol_tokenizer.pad_token_id == im_end == smol_tokenizer.eos_token_id  # the trap DESIGN.md names
    enc = encode_chat(smol_tokenizer, CONV)
    at_im_end = [m for i, m in zip(enc.input_ids, enc.loss_mask, strict=True) if i == im_end]
    assert at_im_end == [0, 0, 1, 0, 1]  # system, user, answer 1, user, answer 2


def test_injected_default_system_message_is_masked(smol_tokenizer):
    enc = encode_chat(smol_tokenizer, [U1, A1, U2, A2])
    text = smol_tokenizer.decode(enc.input_ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert trained_text(smol_tokenizer, enc) == "Hello!<|im_end|>Blue.<|im_end|>"
    assert pieces(smol_tokenizer, enc)[-len(CHATML_PIECES) + 8:] == CHATML_PIECES[8:]


def test_last_assistant_trains_only_final_answer(smol_tokenizer, llama2_tok, zephyr_tok):
    enc = encode_chat(smol_tokenizer, CONV, train_on="last_assistant")
    assert [m for _, m in pieces(smol_tokenizer, enc)] == [0] * 31 + [0, 0, 0, 0, 1, 1, 1, 0]
    assert trained_text(llama2_tok, encode_chat(llama2_tok, CONV, train_on="last_assistant")) == " Blue. <|im_end|>"
    assert trained_text(zephyr_tok, encode_chat(zephyr_tok, CONV, train_on="last_assistant")) == "Blue.<|im_end|>"


def test_pydantic_like_messages_and_leading_assistant(smol_tokenizer):
    objs = [SimpleNamespace(role=m["role"], content=m["content"]) for m in CONV]
    assert encode_chat(smol_tokenizer, objs).loss_mask == encode_chat(smol_tokenizer, CONV).loss_mask
    # a greeting before any prompt answers nothing: context only
    enc = encode_chat(smol_tokenizer, [{"role": "assistant", "content": "Welcome"}, U1, A1])
    assert trained_text(smol_tokenizer, enc) == "Hello!<|im_end|>"


def test_right_truncation_keeps_partial_answer(smol_tokenizer):
    full = encode_chat(smol_tokenizer, CONV)
    enc = encode_chat(smol_tokenizer, CONV, max_length=21)  # cuts after "Hello", "!"
    assert enc.truncated and enc.input_ids == full.input_ids[:21] and enc.loss_mask == full.loss_mask[:21]
    assert enc.n_trained == 2
    assert encode_chat(smol_tokenizer, CONV, max_length=len(full.input_ids)).truncated is False


LONG_U1 = {"role": "user", "content": " ".join(["word"] * 40)}
LONG_CONV = [SYS, LONG_U1, A1, U2, A2]


def test_right_truncation_to_no_answer_reports_empty(smol_tokenizer):
    short = encode_chat(smol_tokenizer, [SYS, U2, A2])
    enc = encode_chat(smol_tokenizer, LONG_CONV, max_length=len(short.input_ids))
    assert enc.truncated and enc.n_trained == 0 and sum(enc.loss_mask) == 0
    assert len(enc.input_ids) == len(short.input_ids)


def test_drop_oldest_turns_retries_without_first_round(smol_tokenizer):
    short = encode_chat(smol_tokenizer, [SYS, U2, A2])
    enc = encode_chat(smol_tokenizer, LONG_CONV, max_length=len(short.input_ids), truncation="drop_oldest_turns")
    assert (enc.input_ids, enc.loss_mask) == (short.input_ids, short.loss_mask)
    assert enc.dropped_turns == 1 and not enc.truncated
    assert smol_tokenizer.decode(enc.input_ids).startswith("<|im_start|>system\nBe brief.")  # system kept
    assert trained_text(smol_tokenizer, enc) == "Blue.<|im_end|>"


def test_drop_oldest_turns_last_assistant(smol_tokenizer):
    long_a1 = {"role": "assistant", "content": " ".join(["yes"] * 40)}
    conv = [SYS, U1, long_a1, U2, A2]
    short = encode_chat(smol_tokenizer, [SYS, U2, A2], train_on="last_assistant")
    kept = encode_chat(smol_tokenizer, conv, max_length=len(short.input_ids), train_on="last_assistant")
    assert kept.n_trained == 0  # right truncation alone loses the final answer
    enc = encode_chat(smol_tokenizer, conv, max_length=len(short.input_ids), train_on="last_assistant",
                      truncation="drop_oldest_turns")
    assert enc.input_ids == short.input_ids and trained_text(smol_tokenizer, enc) == "Blue.<|im_end|>"


def test_drop_oldest_turns_gives_up_with_n_trained_zero(smol_tokenizer):
    enc = encode_chat(smol_tokenizer, LONG_CONV, max_length=10, truncation="drop_oldest_turns")
    assert enc.n_trained == 0 and enc.truncated and len(enc.input_ids) == 10 and enc.dropped_turns == 1
    single = encode_chat(smol_tokenizer, [SYS, LONG_U1, A1], max_length=20, truncation="drop_oldest_turns")
    assert single.n_trained == 0 and single.dropped_turns == 0


def test_drop_oldest_round_keeps_system():
    assert drop_oldest_round(CONV) == [SYS, U2, A2]
    assert drop_oldest_round([SYS, U1, A1]) is None
    assert drop_oldest_round([U1, A1, U2, A2]) == [U2, A2]


def test_batch_matches_single_and_counts(smol_tokenizer):
    convs = [CONV, LONG_CONV, SimpleNamespace(messages=[SYS, U2, A2])]
    rows, stats = encode_chat_batch(smol_tokenizer, convs, max_length=24)
    singles = [encode_chat(smol_tokenizer, getattr(c, "messages", c), max_length=24) for c in convs]
    assert [(r.input_ids, r.loss_mask) for r in rows] == [(s.input_ids, s.loss_mask) for s in singles]
    # [SYS, U2, A2] is exactly 24 tokens (8 system + 8 user + 4 header + Blue . <|im_end|> \n): not truncated
    assert stats == {"rows": 3, "tokens": 24 + 24 + 24, "trained_tokens": 3 + 0 + 3, "truncated": 2,
                     "empty": 1, "dropped_turns": 0}


def test_encode_prompt_ends_with_generation_prompt(smol_tokenizer, llama2_tok):
    ids = encode_prompt(smol_tokenizer, [SYS, U1])
    assert smol_tokenizer.decode(ids).endswith("Hi there<|im_end|>\n<|im_start|>assistant\n")
    assert ids == smol_tokenizer.apply_chat_template([SYS, U1], add_generation_prompt=True, tokenize=True,
                                                     return_dict=False)
    assert llama2_tok.decode(encode_prompt(llama2_tok, [SYS, U1])).endswith("Hi there [/INST]")


def test_mask_from_offsets_boundary_rule():
    offsets = [(0, 3), (3, 8), (8, 10), (10, 10), (10, 14), (14, 15)]
    # a token sharing one character with a span is trained (straddling both ends); zero-width never is
    assert mask_from_offsets(offsets, [(5, 9)]) == [0, 1, 1, 0, 0, 0]
    assert mask_from_offsets(offsets, [(3, 8), (10, 15)]) == [0, 1, 0, 0, 1, 1]
    assert mask_from_offsets(offsets, []) == [0] * 6


def test_template_whose_prefix_is_not_a_prefix_raises(smol_tokenizer):
    counts_messages = named(smol_tokenizer, "chatml")
    counts_messages.chat_template = ("{{ messages|length }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}"
                                     "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    with pytest.raises(ConfigError, match="chat template problem.*prompt before.*message 2"):
        encode_chat(counts_messages, CONV)
    hides_old_answers = named(smol_tokenizer, "chatml")  # like templates that strip earlier reasoning
    hides_old_answers.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}<assistant>[earlier]"
        "{% else %}<{{ m['role'] }}>{{ m['content'] }}{% endif %}{{ eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}")
    with pytest.raises(ConfigError, match="conversation through.*message 2"):
        encode_chat(hides_old_answers, CONV)


def test_template_rejecting_conversation_and_bad_options(llama2_tok, smol_tokenizer):
    with pytest.raises(DataError, match="roles must alternate"):
        encode_chat(llama2_tok, [SYS, U1, U2, A2])
    with pytest.raises(DataError, match="empty conversation"):
        encode_chat(smol_tokenizer, [])
    with pytest.raises(ConfigError, match="train_on"):
        encode_chat(smol_tokenizer, CONV, train_on="everything")
    with pytest.raises(ConfigError, match="truncation"):
        encode_chat(smol_tokenizer, CONV, truncation="left")
    with pytest.raises(ConfigError, match="max_length"):
        encode_chat(smol_tokenizer, CONV, max_length=0)


def test_chatml_adds_no_system_message_of_its_own(smol_tokenizer):
    no_system = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    text = named(smol_tokenizer, "chatml").apply_chat_template(no_system, tokenize=False)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
    assert "SmolLM" in smol_tokenizer.apply_chat_template(no_system, tokenize=False)  # the model's own adds one
    # with a system message, plain ChatML and SmolLM2's own template write the same text
    assert (named(smol_tokenizer, "chatml").apply_chat_template(CONV, tokenize=False)
            == smol_tokenizer.apply_chat_template(CONV, tokenize=False))


def test_apply_named_template_rules(smol_tokenizer):
    tok = copy.deepcopy(smol_tokenizer)
    own = tok.chat_template
    assert apply_named_template(tok, None).chat_template == own
    assert apply_named_template(tok, "model").chat_template == own
    assert apply_named_template(tok, "chatml").chat_template == CHATML
    with pytest.raises(ConfigError, match="not known"):
        apply_named_template(tok, "vicuna")
    tok.chat_template = None
    with pytest.raises(ConfigError, match="set `chat_template`"):
        apply_named_template(tok, None)
    with pytest.raises(ConfigError, match="set `chat_template`"):
        encode_chat(tok, CONV)
    assert apply_named_template(tok, "zephyr").chat_template.startswith("{%- for message in messages")
