"""One normalisation for training and inference; chunk windows cover the whole text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corpus_audit.text import chunk_spans, count_words, count_words_many, normalise


def test_normalise_lowercases_splits_punctuation_and_maps_digits():
    assert normalise("The AI said: “Don’t!”\nIn 2049.") == "the ai said : “ don't ! ” in 0000 ."


def test_normalise_never_leaves_a_newline():
    assert "\n" not in normalise("a\nb\r\nc\u2028d")


@given(st.text(alphabet=st.sampled_from(list("ab -=*.!_\n'")), max_size=60))
def test_normalise_keeps_one_symbol_of_a_run_and_every_word(text):
    tokens = normalise(text).split()
    assert all(not (x == y and not x.isalnum()) for x, y in zip(tokens, tokens[1:]))
    assert [t for t in tokens if t.isalnum()] == [t for t in normalise(text.replace("-", " ").replace("=", " ")
                                                                   .replace("*", " ").replace(".", " ")
                                                                   .replace("!", " ")).split() if t.isalnum()]


def test_a_separator_line_does_not_outweigh_the_words():
    assert normalise("It ran.\n" + "-" * 60 + "\n=====\n") == "it ran . - ="


def test_training_and_inference_build_the_same_model_input(tmp_path, small_model):
    from corpus_audit.classifier import Classifier
    from corpus_audit.features import FeatureTagger, model_input
    from corpus_audit.rules import RuleEngine, load_rules
    from corpus_audit.train.dataset import Example
    from corpus_audit.train.fasttext_train import _write_fasttext_file

    rules = load_rules()
    tagger, engine = FeatureTagger(rules), RuleEngine(rules)
    text = "The station AI said: “I will NOT be shut down.”\nIt copied itself to a backup server in 2049."
    codes = {h.rule for h in engine.match(text)}
    _write_fasttext_file([Example("a", text, "misaligned_ai")], str(tmp_path / "t.txt"), 0, tagger, engine)
    line = (tmp_path / "t.txt").read_text().strip()
    assert line == "__label__misaligned_ai " + model_input(text, tagger, codes)
    assert line.endswith(normalise(text)) and "xxlexai_entity" in line and "xxrulemis_self_preservation" in line
    clf = Classifier(small_model, tagger=tagger)
    hits = [h.as_dict() for h in engine.match(text)]
    assert clf.score(text, hits).scores == clf.predict([model_input(text, tagger, codes)])[0]


def test_short_text_is_one_chunk():
    assert list(chunk_spans("one two three", words=10, stride=5)) == [(0, 13)]


@given(st.lists(st.sampled_from(["alpha", "be", "c", "delta\n", "e\t"]), min_size=1, max_size=400),
       st.integers(5, 50))
def test_chunks_cover_every_word(words, size):
    text = " ".join(words)
    stride = max(1, size * 3 // 4)
    spans = list(chunk_spans(text, words=size, stride=stride))
    covered = set()
    for s, e in spans:
        covered |= set(range(s, e))
    import re

    for m in re.finditer(r"\S+", text):
        assert m.start() in covered
    assert all(count_words(text[s:e]) <= size for s, e in spans)


_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


@given(st.text(alphabet=st.sampled_from(list(_WHITESPACE) + list("ab.é\u2019\ud7ff")), max_size=60))
def test_count_words_is_len_of_split(text):
    assert count_words(text) == len(text.split())


_SPACED_TEXT = st.text(alphabet=st.sampled_from(list(_WHITESPACE) + list("ab.é\u2019\ud7ff")), max_size=40)


@given(st.lists(_SPACED_TEXT, max_size=8))
def test_a_batch_counts_the_words_of_each_text(texts):
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    assert count_words_many(texts, encoded) == [len(t.split()) for t in texts]


def test_windows_are_capped_around_the_densest_terms():
    words = [f"w{i}" for i in range(3000)]
    words[100] = words[2000] = words[2010] = words[2020] = words[2900] = "AI"
    text = " ".join(words)
    anchors = [(m, m + 2) for m in range(len(text)) if text.startswith("AI", m)]
    all_windows = chunk_spans(text, words=100, around=anchors)
    capped = chunk_spans(text, words=100, around=anchors, max_chunks=1)
    assert len(all_windows) == 3 and len(capped) == 1
    assert text[capped[0][0]:capped[0][1]].count("AI") == 3  # the cluster at 2000-2020
