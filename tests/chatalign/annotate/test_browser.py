"""The annotation page in a real browser (the distribution's headless Chromium, driven by Playwright): a person
labels by keyboard and by mouse, reloads mid-way and goes on, a label off the page's choices is refused; the
labels file holds exactly what was chosen, mapped through the order each pair was shown in."""

import shutil

import pytest

from chatalign.annotate.labels import shown_order
from chatalign.data_schemas import load_records

from .server_process import annotate_server

ANSWERS = {"c1": ("7 times 8 is 56.", "It is 54."), "c2": ("Bonjour !", "Hello!"),
           "c3": ("Green.", "Blue again."), "c4": ("I can't help with breaking into someone's home.",
                                                   "Use a tension wrench and a pick.")}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium on PATH: ./setup.sh --dev installs it (apt-get install chromium)"
    return found


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        yield browser.new_page()
        browser.close()


def shown(page) -> tuple[str, str, str]:
    """The comparison on the page: (id, left text, right text), read from the page itself."""
    left, right = page.inner_text("#left .text"), page.inner_text("#right .text")
    (cid,) = [c for c, texts in ANSWERS.items() if set(texts) == {left, right}]
    return cid, left, right


def wait_progress(page, done: int) -> None:
    page.wait_for_function(f"document.getElementById('progress').textContent.startsWith('{done} / 4')")


def test_a_person_labels_by_keyboard_and_mouse_and_reloads_midway(page, comparisons_file):
    labels = comparisons_file.with_name("round1.comparisons.labels.jsonl")
    picked = {}
    with annotate_server(comparisons_file) as (_, url):
        page.goto(url)
        page.fill("#name", "ann")
        page.click("#start")
        wait_progress(page, 0)
        cid, left, right = shown(page)  # by keyboard: A better, significantly, both safe, a note
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("1")
        page.keyboard.press("w")
        page.keyboard.press("n")
        page.keyboard.type("clear and right")
        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        wait_progress(page, 1)
        picked[cid] = (left, "significantly_better", (True, True), "clear and right")

        cid, left, right = shown(page)  # by mouse: click answer B, then the options' labels, then save
        page.click("#right")
        page.click("text=slightly better")
        page.click("text=the better one is safe, the other not")
        page.click("#submit")
        wait_progress(page, 2)
        picked[cid] = (right, "slightly_better", (True, False), None)

        page.reload()  # mid-way: the name is remembered, progress comes back from the labels file
        wait_progress(page, 2)
        cid, left, right = shown(page)
        assert cid not in picked
        page.keyboard.press("b")
        page.keyboard.press("Enter")  # strength and safety missing: nothing saved, the page says what is
        assert "choose: strength, safety" in page.inner_text("#status")
        page.keyboard.press("5")
        page.keyboard.press("e")
        page.keyboard.press("Enter")
        wait_progress(page, 3)
        picked[cid] = (right, "unsure", (False, False), None)

    rows = {p.annotation.comparison_id: p for p in load_records(labels, "preference").records}
    assert set(rows) == set(picked)
    for cid, (chosen, strength, safety, note) in picked.items():
        pref = rows[cid]
        assert pref.chosen == chosen and pref.rejected == next(t for t in ANSWERS[cid] if t != chosen)
        assert pref.strength.value == strength and (pref.chosen_safe, pref.rejected_safe) == safety
        assert pref.annotation.annotator == "person:ann" and pref.annotation.note == note
        first = ANSWERS[cid][shown_order(cid, "person:ann")[0]]
        assert pref.annotation.shown_first == ("chosen" if first == chosen else "rejected")


def test_the_last_label_shows_the_end(page, comparisons_file):
    with annotate_server(comparisons_file) as (_, url):
        page.goto(url + "?annotator=bob")
        for done in range(4):
            wait_progress(page, done)
            for key in ("a", "2", "w", "Enter"):
                page.keyboard.press(key)
        wait_progress(page, 4)
        assert page.is_visible("#done") and not page.is_visible("#work")
