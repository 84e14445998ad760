"""The hard ShapesEdit families: every case has its family's difficulty, seeded, and readable by the editors."""
import pytest

from ar_edit_pack.core.shapes import families, instructions, world


@pytest.mark.parametrize("family", families.FAMILIES)
def test_every_case_has_the_family_difficulty_and_reads_back(family):
    cases = families.family_cases(family, 60, seed=3)
    assert len(cases) == 60 and all(families.is_in_family(family, e) for e in cases)
    assert families.family_cases(family, 60, seed=3) == cases  # seeded
    assert families.family_cases(family, 60, seed=4) != cases
    kinds = {e.kind for e in cases}
    assert kinds == set(families._KINDS[family])  # the family's kinds in rotation, not one kind's figure
    for e in cases:
        assert e.target != e.source
        for text in instructions.instructions(e):
            assert instructions.apply_instruction(e.source, text) == e.target.captioned(), text


def test_families_force_what_the_plain_benchmark_draws_rarely():
    plain = world.edit_cases(1000, seed=0)
    share = lambda fam: sum(families.is_in_family(fam, e) for e in plain) / len(plain)
    assert share("twins") < 0.05 and share("untextured") < 0.1  # why the families exist
    twins = families.family_cases("twins", 30)
    # the edited twin is named by its position, and the other twin is left as it was
    for e in twins:
        text = instructions.instruction(e)
        assert any(world.position_phrase(c) in text for c in range(9)), text
        kept = [o for o in e.source.objects if e.target.object_at(o.cell) == o]
        changed = [o for o in e.source.objects if e.target.object_at(o.cell) != o]
        assert any((o.shape, o.color, o.size) == (changed[0].shape, changed[0].color, changed[0].size) for o in kept)
    checkered = families.family_cases("checkered", 30)
    bg = [e for e in checkered if e.kind == "background"]
    assert {e.source.background == "checkered" for e in bg} == {True, False}  # to and from the checkerboard


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="family must be one of"):
        families.family_cases("tiny objects", 3)
