import json

import av
import numpy as np
import pytest

from hieroaction.data.records import read_jsonl
from hieroaction.data.validate import validate_records
from hieroaction.domains import get_domain
from hieroaction.errors import ConfigError, DataError, HieroActionError
from hieroaction.synth import (
    RenderConfig,
    SynthConfig,
    assign_splits,
    generate,
    load_grammar,
    reference_correlations,
    sample_clip,
)
from tests.synth.pixel_reader import read_qualities

N = 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "bench"
    summary = generate(out, SynthConfig(workers=1), n=N, seed=5)
    return out, summary, read_jsonl(out / "records.jsonl")


def _decode(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_layout_and_summary(dataset):
    out, summary, records = dataset
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "domain.yaml", "records.jsonl", "synth.json", "synth_config.yaml", "videos"]
    assert len(list((out / "videos").glob("*.mp4"))) == N
    assert summary.n == N and summary.frames == sum(r.video.num_frames for r in records)
    assert json.loads((out / "synth.json").read_text())["splits"] == summary.splits
    assert "seed 5" in (out / "README.md").read_text()


def test_split_counts(dataset):
    _, summary, records = dataset
    counts = {s: sum(r.split == s for r in records) for s in ("train", "val", "test")}
    assert counts == summary.splits == {"train": 17, "val": 2, "test": 5}
    splits = assign_splits(2000, 0, 0.1, 0.2)
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (1400, 200, 400)
    assert splits != assign_splits(2000, 1, 0.1, 0.2)


def test_records_follow_the_domain(dataset):
    _, _, records = dataset
    grammar, domain = load_grammar(), get_domain("synth")
    assert validate_records(records).problems == []
    for r in records:
        assert (r.dataset, r.domain) == ("synth", "synth")
        action = grammar.action(r.action.label)
        assert [s.label for s in r.steps] == list(action.step_labels)
        # Steps tile the whole clip, which is the whole video.
        assert r.video.start_frame == 0 and r.video.fps == 12.0
        assert r.steps[0].start_frame == 0 and r.steps[-1].end_frame == r.video.end_frame
        assert all(a.end_frame + 1 == b.start_frame for a, b in zip(r.steps, r.steps[1:]))
        assert 22 <= r.video.num_frames <= 48
        # The score formula, within rounding.
        comps = r.score.components
        assert comps["difficulty"] == action.difficulty
        assert comps["execution"] == sum(r.score.judges)
        assert r.score.final == pytest.approx(domain.final_score(comps), abs=0.006)
        assert r.score.range == domain.score_range
        # Three judges on the 0.5 grid close to the mean step quality (little noise).
        mean_quality = np.mean([s.score for s in r.steps])
        assert len(r.score.judges) == 3
        for j in r.score.judges:
            assert 0 <= j <= 10 and (j * 2).is_integer() and abs(j - mean_quality) <= 1.5
        assert all(0 <= s.score <= 10 and (s.score * 2).is_integer() for s in r.steps)


def test_videos_match_their_records(dataset):
    _, _, records = dataset
    for r in records[:6]:
        assert r.video.path.startswith("/")
        frames = _decode(r.video.path)
        assert frames.shape == (r.video.num_frames, 112, 112, 3)


def test_quality_is_readable_from_the_decoded_videos(dataset):
    _, _, records = dataset
    config = RenderConfig()
    for index, r in enumerate(records):
        spec = sample_clip(index, 5, SynthConfig()).spec
        estimate = read_qualities(_decode(r.video.path), spec, config, tol=40)
        for step, s in enumerate(r.steps):
            assert abs(estimate[step] - s.score) < 0.75, (r.id, step, estimate)


def test_nothing_but_pixels_carries_the_labels(dataset):
    out, _, records = dataset
    grammar = load_grammar()
    words = {a.label for a in grammar.actions} | {t.name for t in grammar.takeoffs} | {
        e.name for e in grammar.entries} | {"turn", "quality", "score"}
    for r in records:
        name = r.video.path.rsplit("/", 1)[-1]
        assert name == f"{r.id}.mp4"
        assert not any(w in r.id or w in name for w in words)
    # Ids follow clip order, which is independent of labels and splits.
    assert [r.id for r in records] == sorted(r.id for r in records)
    for r in records[:4]:
        with av.open(r.video.path) as container:
            tags = " ".join(f"{k}={v}" for k, v in {**container.metadata,
                                                   **container.streams.video[0].metadata}.items())
        assert not any(w in tags.lower() for w in words)


def test_determinism_and_seeds(dataset, tmp_path):
    out, _, records = dataset
    first = (out / "records.jsonl").read_bytes()
    videos = {p.name: p.read_bytes() for p in (out / "videos").glob("*.mp4")}
    # Same seed, same folder: the same bytes, also when rendered by worker processes.
    generate(out, SynthConfig(workers=2, parallel_min_clips=1), n=N, seed=5, overwrite=True)
    assert (out / "records.jsonl").read_bytes() == first
    assert {p.name: p.read_bytes() for p in (out / "videos").glob("*.mp4")} == videos
    # Clip i does not depend on n; another seed gives another dataset.
    assert sample_clip(3, 5, SynthConfig()) == sample_clip(3, 5, SynthConfig(n=7))
    other = generate(tmp_path / "other", SynthConfig(workers=1), n=N, seed=6)
    other_records = read_jsonl(other.records_path)
    assert [r.action.label for r in other_records] != [r.action.label for r in records]


def test_relative_paths(tmp_path):
    summary = generate(tmp_path / "rel", SynthConfig(workers=1, absolute_paths=False), n=3)
    (record, *_) = read_jsonl(summary.records_path)
    assert record.video.path == f"videos/{record.id}.mp4"
    assert (tmp_path / "rel" / record.video.path).is_file()


def test_reference_correlations_separate_oracle_and_reader():
    grammar, config = load_grammar(), SynthConfig()
    from hieroaction.synth.generator import build_record

    records = [build_record(sample_clip(i, 0, config, grammar), "test", "x.mp4", 12.0, grammar)
               for i in range(400)]
    rho = reference_correlations(records)
    assert rho["clips"] == 400
    assert rho["difficulty_oracle"] < 0.8 and rho["quality_reader"] > 0.95
    assert reference_correlations(records[:2])["difficulty_oracle"] is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 0}, ConfigError, "n must be a positive number of clips, got 0"),
        ({"n": -3}, ConfigError, "positive number"),
        ({"config": SynthConfig(val_fraction=0.5, test_fraction=0.5)}, ConfigError,
         "must leave clips for training"),
        ({"config": SynthConfig(test_fraction=1.5)}, ConfigError, "test_fraction must be in"),
        ({"config": SynthConfig(workers=-1)}, ConfigError, "workers must be >= 0"),
    ],
)
def test_bad_settings(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        generate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_bad_output_folders(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(DataError, match="file.txt: is a file"):
        generate(a_file, n=2)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty and holds no earlier synth output"):
        generate(busy, n=2)
    assert (busy / "mine.txt").read_text() == "keep me"
    done = tmp_path / "done"
    generate(done, n=2)
    with pytest.raises(HieroActionError, match="pass --overwrite"):
        generate(done, n=2)
    (done / "notes.txt").write_text("mine")
    generate(done, n=3, overwrite=True)
    assert len(read_jsonl(done / "records.jsonl")) == 3
    assert len(list((done / "videos").iterdir())) == 3
    assert (done / "notes.txt").read_text() == "mine"


def test_an_interrupted_run_leaves_no_records_and_can_be_overwritten(tmp_path, monkeypatch):
    import hieroaction.synth.generator as generator

    calls = []

    def failing_write(frames, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write(frames, path, *args, **kwargs)

    real_write = generator.write_video
    monkeypatch.setattr(generator, "write_video", failing_write)
    out = tmp_path / "bench"
    with pytest.raises(KeyboardInterrupt):
        generate(out, SynthConfig(workers=1), n=5)
    assert not (out / "records.jsonl").exists()
    assert json.loads((out / "synth.json").read_text()) == {"complete": False}
    monkeypatch.setattr(generator, "write_video", real_write)
    summary = generate(out, SynthConfig(workers=1), n=5, overwrite=True)
    assert summary.complete and len(read_jsonl(out / "records.jsonl")) == 5
