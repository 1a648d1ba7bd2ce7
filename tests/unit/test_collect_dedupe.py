"""New examples that repeat existing ones are found: exactly, or nearly (word shingles)."""

from __future__ import annotations

from workbench.collect.dedupe import DuplicateIndex, index_store, jaccard, shingles
from workbench.data.store import ExampleStore
from workbench.workspace import Workspace


def pair(question: str, answer: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You answer gardening questions."},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]


TOMATOES = pair(
    "When should I plant tomatoes in a cold northern garden with late spring frosts?",
    "Plant them outside two weeks after the last frost, once the soil is above 15 degrees, "
    "and harden the seedlings off for a week before.",
)


def test_shingles_and_jaccard() -> None:
    assert shingles("The cat sat on the mat") == {
        "the cat sat",
        "cat sat on",
        "sat on the",
        "on the mat",
    }
    same = shingles("a b c d")
    assert jaccard(same, same) == 1.0
    assert jaccard(same, shingles("w x y z")) == 0.0


def test_exact_near_and_distinct() -> None:
    index = DuplicateIndex(threshold=0.8)
    index.add("tomatoes", TOMATOES)
    exact = index.find(TOMATOES)
    assert exact is not None and exact.exact and exact.key == "tomatoes"
    reworded = pair(
        TOMATOES[1]["content"],
        TOMATOES[2]["content"].replace("a week before", "a week before that"),
    )
    near = index.find(reworded)
    assert near is not None and not near.exact and 0.8 <= near.similarity < 1.0
    other = pair("How deep do I plant garlic?", "About five centimetres, pointed end up.")
    assert index.find(other) is None


def test_a_system_prompt_alone_does_not_make_a_duplicate() -> None:
    index = DuplicateIndex(threshold=0.5)
    index.add(1, pair("Roses?", "Prune in March."))
    assert index.find(pair("Basil?", "Pinch the tops weekly.")) is None


def test_the_store_index_includes_deleted_examples(workspace: Workspace) -> None:
    with ExampleStore(workspace.db_path) as store:
        kept, rejected = store.add_examples(
            [{"messages": TOMATOES}, {"messages": pair("Garlic?", "In autumn, 5 cm deep.")}]
        )
        store.delete([rejected])
        index = index_store(store, threshold=0.9)
    assert len(index) == 2
    assert index.find(pair("Garlic?", "In autumn, 5 cm deep.")).key == rejected  # type: ignore[union-attr]
    assert index.find(TOMATOES).key == kept  # type: ignore[union-attr]
