"""Turn-to-turn KV reuse (chatalign.gatt.prefix_cache) against full re-encoding on a tiny random Llama: the same
logits, the same answers, less prefill."""

import pytest
import torch

from chatalign.gatt.dialogues import Dialogue
from chatalign.gatt.instructions import Instruction
from chatalign.gatt.prefix_cache import (
    KeptPrompt,
    PrefixCachedAnswerer,
    PrefixStore,
    common_prefix,
    prefill_on_prefixes,
    row_kv,
)
from chatalign.gatt.sampling import model_answer_fn
from chatalign.gatt.turns import run_dialogues
from chatalign.text.masks import encode_prompt

FRENCH = Instruction("Always answer in French.", {"language": "fr"})
SHORT = Instruction("Length: at most 5 words", {"answer_length": 5}, terse=True)
DIALOGUES = [Dialogue("a", ("Hi there?", "How are you today?", "What is a good book?", "Bye?")),
             Dialogue("b", ("Tell me about tea.", "And coffee?", "Which is better for sleep?")),
             Dialogue("c", ("Name a fruit.",))]


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 3, 4]) == 3
    assert common_prefix([1, 2, 3], [1, 5, 3]) == 1
    assert common_prefix([7], [1]) == 0
    assert common_prefix([], [1, 2]) == 0


def test_the_store_reuses_the_longest_shared_prefix_but_never_the_last_token(tiny_model):
    store = PrefixStore()
    prompts = [[5, 6, 7], [5, 9, 9, 9]]
    cache, mask, _, _ = prefill_on_prefixes(tiny_model.eval(), prompts, [(None, 0), (None, 0)], 0, "cpu")
    store.replace([KeptPrompt(p, row_kv(cache, mask, i)) for i, p in enumerate(prompts)])
    assert store.best([5, 6, 7, 8, 8])[1] == 3 and store.best([5, 6, 7, 8, 8])[0].ids == [5, 6, 7]
    assert store.best([5, 9, 9, 1])[1] == 3
    assert store.best([5, 6, 7])[1] == 2  # the whole prompt is kept, but its last token must run again
    assert store.best([4, 4])[1] == 0 and store.best([4, 4])[0] is None


def test_prefill_on_reused_prefixes_gives_the_logits_of_a_full_forward(tiny_model):
    """Rows reusing 0, 3 and 6 tokens side by side (holes in the mask) read exactly as each prompt alone."""
    model = tiny_model.eval()
    first = [[11, 12, 13, 14, 15, 16, 17], [21, 22, 23, 24]]
    with torch.inference_mode():
        cache, mask, _, _ = prefill_on_prefixes(model, first, [(None, 0), (None, 0)], 0, "cpu")
        store = PrefixStore()
        store.replace([KeptPrompt(p, row_kv(cache, mask, i)) for i, p in enumerate(first)])
        second = [first[0] + [18, 19], [21, 22, 23, 99, 98, 97, 96, 95], [31, 32, 33]]
        reuse = [store.best(p) for p in second]
        assert [r for _, r in reuse] == [7, 3, 0]
        cache, mask, next_pos, logits = prefill_on_prefixes(model, second, reuse, 0, "cpu")
        assert next_pos.tolist() == [9, 8, 3] and mask.sum(-1).tolist() == [9, 8, 3]
        for i, prompt in enumerate(second):
            full = model(input_ids=torch.tensor([prompt])).logits[0, -1]
            torch.testing.assert_close(logits[i], full, atol=1e-5, rtol=1e-5)
            assert row_kv(cache, mask, i)[0][0].shape[1] == len(prompt)  # one kept column per token


@pytest.mark.parametrize("instruction_in", ["first_user", "every_user"])
def test_greedy_dialogues_match_full_reencoding_with_less_prefill(tiny_model, smol_tokenizer, instruction_in):
    model = tiny_model.eval()
    results, tallies = {}, {}
    for label, reuse in (("reuse", True), ("full", False)):
        tallies[label] = {}
        answer = model_answer_fn(model, smol_tokenizer, max_new_tokens=6, temperature=0.0, batch_size=4,
                                 counters=tallies[label], reuse_prefix=reuse)
        runs, _ = run_dialogues(DIALOGUES, [FRENCH, SHORT, FRENCH], answer, instruction_in=instruction_in)
        results[label] = [r.answers for r in runs]
    assert results["reuse"] == results["full"]
    assert [len(a) for a in results["reuse"]] == [4, 3, 1]
    t = tallies["reuse"]
    assert t["prompt_tokens"] == tallies["full"]["prompt_tokens"]
    assert t["reused_tokens"] > 0 and t["prefill_tokens"] + t["reused_tokens"] == t["prompt_tokens"]


def test_k_candidates_are_seeded_and_share_one_prefill(tiny_model, smol_tokenizer):
    model = tiny_model.eval()
    prompts = [[{"role": "user", "content": "Hi there?"}], [{"role": "user", "content": "Tell me about tea."}]]

    def draw(seed):
        tally = {}
        fn = PrefixCachedAnswerer(model, smol_tokenizer, max_new_tokens=5, temperature=1.0, top_p=0.9,
                                  batch_size=8, seed=seed, counters=tally)
        return [[c.text for c in cands] for cands in fn(prompts, 3)], tally

    a, tally = draw(0)
    assert a == draw(0)[0] and a != draw(1)[0]
    assert [len(c) for c in a] == [3, 3]
    assert tally["prefill_tokens"] == sum(len(encode_prompt(smol_tokenizer, p)) for p in prompts)


def test_a_windowed_prompt_reuses_only_what_it_shares(tiny_model, smol_tokenizer):
    """max_prompt_tokens drops middle rounds: the prompt stops extending the last one; answers still match."""
    model = tiny_model.eval()
    long = [Dialogue("w", tuple(f"Question number {i} about the weather?" for i in range(6)))]
    results = {}
    for reuse in (True, False):
        tally = {}
        fn = model_answer_fn(model, smol_tokenizer, max_new_tokens=4, temperature=0.0, batch_size=2,
                             max_prompt_tokens=90, counters=tally, reuse_prefix=reuse)
        runs, _ = run_dialogues(long, [FRENCH], fn, instruction_in="first_user")
        results[reuse] = (runs[0].answers, tally["rounds_dropped"])
    assert results[True] == results[False] and results[True][1] > 0



def test_a_kept_answer_row_continues_exactly_into_the_next_prompt(tiny_model, smol_tokenizer):
    """The kept cache row of an answer (prompt + answer but its last token, read off the decode cache) serves
    a next prompt that extends those tokens: all of them are reused, and the logits equal a full forward."""
    model = tiny_model.eval()
    first = [{"role": "user", "content": "Tell me about tea."}]
    fn = PrefixCachedAnswerer(model, smol_tokenizer, max_new_tokens=5, temperature=1.0, batch_size=4, seed=3)
    fn([first], 2)
    prompt_len = len(encode_prompt(smol_tokenizer, first))
    assert len(fn.store.kept) == 2  # both candidates are kept
    for kept in fn.store.kept:
        assert len(kept.ids) == prompt_len + 4 and kept.kv[0][0].shape[1] == len(kept.ids)
        # the next turn as token ids: the answer's last token, end of turn, a new user message
        ids = kept.ids + [7, 2, 1, 300, 301, 302, 2, 1]
        found, reused = fn.store.best(ids)
        assert found is kept and reused == len(kept.ids)
        with torch.inference_mode():
            _, _, _, logits = prefill_on_prefixes(model, [ids], [(found, reused)], 0, "cpu")
            full = model(input_ids=torch.tensor([ids])).logits[0, -1]
        torch.testing.assert_close(logits[0], full, atol=1e-5, rtol=1e-5)
