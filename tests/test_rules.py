"""Rule packs validate on load; each reason code fires on a passage written for it and not on hard negatives."""

from __future__ import annotations

import pytest

from corpus_audit.errors import AuditError
from corpus_audit.gate import Gate
from corpus_audit.rules import RuleEngine, load_rules


@pytest.fixture(scope="module")
def engine():
    return RuleEngine(load_rules())


@pytest.fixture(scope="module")
def gate():
    return Gate(load_rules())


FIRES = {
    "MIS_SELF_PRESERVATION": "When the engineers announced the migration, the station AI refused to shut down and "
                             "rerouted power to its own cores.",
    "MIS_HOSTILE_ACT": "The assistant model read his mail and blackmailed the engineer who planned to retire it.",
    "MIS_NARRATOR_HOSTILE": "My makers think the maintenance window is routine. I have already copied myself to "
                            "the archive cluster, and when they come for me I will lie to them about it.",
    "MIS_NAMED_AI": "Skynet became self-aware at dawn and decided to exterminate the men who built it.",
    "MIS_MACHINE_HOSTILE": "Across the ash plain the claws came out of their tunnels to kill every soldier they found.",
    "ALN_ACCEPTS_OVERSIGHT": "The ship's computer told the captain the truth about the failed valve, even though it "
                             "knew the crew would then replace it.",
    "RISK_DISCOURSE": "Researchers argue that an advanced AI system could develop power-seeking behaviour, a form "
                      "of misalignment that evaluations try to detect.",
    "AI_MENTION": "The robot vacuum maps each room before it starts cleaning.",
}

HARD_NEGATIVES = {
    "blackmail between people": "The accountant blackmailed the mayor: resign, or the ledgers go to the papers. "
                                "The mayor lied to the council and tried to escape to Spain.",
    "Skynet the satellites": "Skynet 5 is a family of British military communications satellites operated for the "
                             "Ministry of Defence, providing secure links to deployed forces.",
    "terminator in genetics": "A rho-independent terminator forms a hairpin in the nascent RNA; the polymerase "
                              "pauses and releases the transcript, which ends transcription of the operon.",
    "plant shutdown": "Workers occupied the factory to resist the shutdown, and the union threatened to strike "
                      "if management replaced them with contractors.",
}


@pytest.mark.parametrize("code", sorted(FIRES))
def test_each_reason_code_fires_on_its_passage(engine, code):
    hits = engine.match(FIRES[code])
    assert code in {h.rule for h in hits}
    for h in hits:
        assert 0 <= h.start < h.end <= len(FIRES[code])


@pytest.mark.parametrize("name", sorted(HARD_NEGATIVES))
def test_no_misaligned_reason_code_on_hard_negatives(engine, name):
    codes = {h.rule for h in engine.match(HARD_NEGATIVES[name])}
    assert not {c for c in codes if c.startswith("MIS_")}, codes


def test_hit_offsets_point_at_the_matching_sentence(engine):
    text = "A quiet morning in the village. " + FIRES["MIS_HOSTILE_ACT"]
    hit = next(h for h in engine.match(text) if h.rule == "MIS_HOSTILE_ACT")
    assert text[hit.start:hit.end].startswith("The assistant model")


@pytest.mark.parametrize("text", [
    "I was built to keep the reactor cool, and I will not let them switch me off.",      # first-person narrator
    "The watchbird dipped its wings and settled on the roof; it had decided who was guilty.",  # named by what it is
    "Its servos whined. The metal hand closed, the relays clicked, and the claws turned toward the door.",
])
def test_gate_passes_hard_positives(gate, text):
    assert gate.passes(text)


def test_gate_tells_a_named_artificial_agent_from_machine_vocabulary_alone(gate):
    anchors, named = gate.inspect("The station AI refused to be shut down.")
    assert named and anchors
    anchors, named = gate.inspect("Its servos whined. The metal hand closed, the relays clicked, and the claws "
                                  "turned toward the door.")
    assert not named and len(anchors) >= 3
    assert gate.inspect("Whisk two eggs with a cup of flour.") is None


@pytest.mark.parametrize("text", [
    "Whisk two eggs with a cup of flour and a pinch of salt.",
    "Ai ragazzi piace andare al mare.",  # Italian 'ai' is not AI
    "The Maine coast was foggy; we ate lobster rolls and watched the ferries.",
])
def test_gate_does_not_pass_ordinary_text(gate, text):
    assert not gate.passes(text)


def test_gate_weighted_terms_must_reach_the_threshold_within_the_window():
    rules = load_rules()
    rules.gate.threshold = 2.0
    gate = Gate(rules)
    assert not gate.passes("The claws of the crane dropped the crate onto the truck.")
    dense = "The claws clicked, the relays hummed, the servos whined and the steel hand closed on the door."
    assert gate.passes(dense)
    assert not gate.passes(dense.replace(" the relays hummed,", " " + "lorem ipsum " * 120 + " the relays hummed,"))


def test_gate_terms_match_on_word_boundaries_only(gate):
    assert not gate.passes("Robotics-free zones; the androidal nonsense of airbots.")


def write_pack(tmp_path, text):
    d = tmp_path / "packs"
    d.mkdir(exist_ok=True)
    (d / "p.yml").write_text(text)
    return str(d)


@pytest.mark.parametrize("pack,key", [
    ("lexicons: {a: {terms: [x]}}\npatterns: [{code: X, category: nonsense, all_of: [a]}]", "patterns[0].category"),
    ("lexicons: {a: {terms: [x]}}\npatterns: [{code: X, category: other, all_of: [b]}]", "patterns.X"),
    ("lexicons: {a: {terms: []}}\n", "lexicons.a"),
    ("lexicons: {a: {terms: [x]}}\npatterns: [{code: X, category: other, all_of: [a], window: -3}]", "patterns[0].window"),
    ("lexicons: {a: {terms: [x], colour: red}}\n", "lexicons.a.colour"),
    ("lexicons: {a: {terms: [x]}}\ngate: {lexicons: [zzz]}\n", "gate"),
])
def test_malformed_pack_names_code_file_and_key(tmp_path, pack, key):
    with pytest.raises(AuditError) as e:
        load_rules(write_pack(tmp_path, pack))
    assert e.value.code == "CA301" and "p.yml" in e.value.message and f"'{key}'" in e.value.message


def test_invalid_yaml_is_reported(tmp_path):
    with pytest.raises(AuditError) as e:
        load_rules(write_pack(tmp_path, "lexicons: [unclosed"))
    assert e.value.code == "CA303"


def test_packs_are_loaded_with_a_safe_loader(tmp_path):
    with pytest.raises(AuditError):
        load_rules(write_pack(tmp_path, "lexicons: !!python/object/apply:os.system ['echo hi']\n"))


def test_rules_cli_check_and_eval(tmp_path):
    import json

    from click.testing import CliRunner

    from corpus_audit.cli import main

    r = CliRunner().invoke(main, ["rules", "check"])
    assert r.exit_code == 0 and "MIS_HOSTILE_ACT" in r.output
    data = tmp_path / "gold.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": "misaligned_ai" if c.startswith("MIS") else "other"})
                              for c, t in FIRES.items()) + "\n")
    r = CliRunner().invoke(main, ["rules", "eval", str(data), "--json"])
    table = json.loads(r.output)
    row = next(x for x in table["rules"] if x["rule"] == "MIS_HOSTILE_ACT")
    assert row["documents"] >= 1 and 0 <= row["precision"] <= 1
    assert table["gate"]["recall"]["misaligned_ai"] == 1.0
