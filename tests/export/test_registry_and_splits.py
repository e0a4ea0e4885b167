"""The registry's version numbering and atomic publishing, and content-stable grouped splits."""

import json

import pytest

from pipelines.export.registry import DatasetNotFound, Registry, parse_ref
from pipelines.export.splits import assign_splits, normalise_text


def test_refs():
    assert parse_ref("quickstart") == ("quickstart", "latest")
    assert parse_ref("quickstart@3") == ("quickstart", "v3")
    assert parse_ref("quickstart@v12") == ("quickstart", "v12")
    for bad in ("Quick@v1", "q@version1", "q@v1.2"):
        with pytest.raises(ValueError):
            parse_ref(bad)


def test_versions_are_published_atomically_and_never_overwritten(tmp_path):
    reg = Registry(tmp_path)

    def build(folder, number):
        (folder / "data.txt").write_text(str(number))
        return {"version": f"v{number}"}

    assert str(reg.create("ds", build)) == "ds@v1"

    raced = []

    def racing(folder, number):
        # Another exporter publishes this very number while we build: we must take the next one.
        other = tmp_path / "ds" / f"v{number}"
        if not raced:
            raced.append(number)
            other.mkdir()
            (other / "manifest.json").write_text(json.dumps({"version": f"v{number}"}))
        return build(folder, number)

    assert str(reg.create("ds", racing)) == "ds@v3"
    assert reg.versions("ds") == [1, 2, 3] and (tmp_path / "ds" / "v2" / "manifest.json").exists()
    assert not list((tmp_path / "ds").glob(".tmp-*"))

    def broken(folder, number):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        reg.create("ds", broken)
    assert reg.versions("ds") == [1, 2, 3] and not list((tmp_path / "ds").glob(".tmp-*"))
    assert reg.resolve("ds@latest").version == 3 and reg.resolve("ds@1").path == tmp_path / "ds" / "v1"
    with pytest.raises(DatasetNotFound, match="versions: v1, v2, v3"):
        reg.resolve("ds@v7")


def test_splits_keep_groups_together_and_depend_only_on_content():
    items = [[f"persona:{i % 10}", f"prompt:{i}"] for i in range(200)] + [["persona:0", "prompt:bridge"],
                                                                          ["persona:1", "prompt:bridge"]]
    splits, groups = assign_splits(items, validation=0.3, seed=0)
    by_persona: dict[str, set[str]] = {}
    for keys, split in zip(items, splits):
        by_persona.setdefault(keys[0], set()).add(split)
    assert all(len(s) == 1 for s in by_persona.values())
    assert groups == 9  # persona 0 and 1 are bridged by a shared prompt
    assert splits == assign_splits(list(reversed(items)), 0.3, 0)[0][::-1]  # order does not matter
    many = [[f"id:{i}"] for i in range(2000)]
    share = assign_splits(many, 0.2, 7)[0].count("validation") / 2000
    assert 0.17 < share < 0.23
    assert normalise_text("  Hello,   WORLD!! ") == "hello world"
