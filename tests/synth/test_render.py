import dataclasses

import av
import numpy as np
import pytest
from scipy.stats import spearmanr

from hieroaction.errors import ConfigError, VideoError
from hieroaction.synth import RenderConfig, SynthConfig, render_clip, sample_clip, write_video
from hieroaction.synth.render import ClipSpec, pick_codec, ring_colour
from tests.synth.pixel_reader import read_qualities

SPEC = ClipSpec(colour=(235, 45, 45), turns=2, head_first=True, step_frames=(8, 16, 9),
                qualities=(6.0, 6.0, 6.0))


def _with(**changes) -> ClipSpec:
    fields = {**SPEC.__dict__, **changes}
    return ClipSpec(**fields)


def test_render_shape_and_purity():
    frames = render_clip(SPEC)
    assert frames.shape == (33, 112, 112, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, render_clip(_with()))
    small = render_clip(SPEC, RenderConfig(size=64))
    assert small.shape == (33, 64, 64, 3)


@pytest.mark.parametrize("step", [0, 1, 2])
def test_a_step_quality_changes_only_that_steps_pixels(step):
    qualities = list(SPEC.qualities)
    qualities[step] = 9.5
    base, better = render_clip(SPEC), render_clip(_with(qualities=tuple(qualities)))
    bounds = np.cumsum((0, *SPEC.step_frames))
    changed = [bool((base[i] != better[i]).any()) for i in range(len(base))]
    inside = range(bounds[step], bounds[step + 1])
    assert any(changed[i] for i in inside)
    assert not any(c for i, c in enumerate(changed) if i not in inside)


def test_half_a_point_changes_pixels_in_every_step():
    base = render_clip(SPEC)
    for step in range(3):
        qualities = list(SPEC.qualities)
        qualities[step] += 0.5
        other = render_clip(_with(qualities=tuple(qualities)))
        start = sum(SPEC.step_frames[:step])
        stop = start + SPEC.step_frames[step]
        assert np.abs(base[start:stop].astype(int) - other[start:stop]).sum() > 500


def test_turns_show_as_rings_and_entry_kind_as_head_position():
    config = RenderConfig()
    one, three = render_clip(_with(turns=1, step_frames=(8, 10, 9))), render_clip(
        _with(turns=3, step_frames=(8, 22, 9)))
    # the rings are a shade of the take-off colour, distinct from the figure's own colour
    colour = ring_colour(SPEC, config)
    assert colour != SPEC.colour
    ring = np.all(one[10] == colour, axis=-1).sum()
    assert ring > 50
    assert np.all(three[10] == colour, axis=-1).sum() > 2.5 * ring
    # Before contact, the white head is below the body's centre when diving head first.
    feet = render_clip(_with(head_first=False))
    head_rows = [np.nonzero(np.all(f[24 + 1] == 255, axis=-1))[0].mean() for f in (
        render_clip(SPEC), feet)]
    assert head_rows[0] > head_rows[1] + 10


def test_a_clean_head_first_entry_ends_in_a_tall_column_in_front_of_the_figure():
    config = RenderConfig()
    size = config.size
    # the band of rows from 0.15 to 0.02 of the side above the water line, where a head-first
    # column stands and a clean feet-first dome does not reach
    band = slice(round((config.water_line - 0.15) * size), round((config.water_line - 0.02) * size))
    for quality in (10.0, 9.0, 8.0):
        last = {kind: render_clip(_with(head_first=kind, qualities=(6.0, 6.0, quality)))[-1]
                for kind in (True, False)}
        white = {kind: np.all(frame[band] >= 235, axis=-1).sum() for kind, frame in last.items()}
        assert white[True] > 100 and white[True] > 4 * white[False], (quality, white)
        if quality == 10.0:
            white_clean = white[True]
    # with no floor the column is as tall as its width makes it, behind the figure: less than
    # half as much white in the band for the cleanest entry
    old = dataclasses.replace(config, head_first_splash_min_height=0.0)
    clean = render_clip(_with(qualities=(6.0, 6.0, 10.0)), old)[-1]
    assert 2 * np.all(clean[band] >= 235, axis=-1).sum() < white_clean


def test_a_pixel_reader_recovers_every_quality_from_rendered_frames():
    config, synth = RenderConfig(), SynthConfig()
    estimates, truth, head_first = [], [], []
    for index in range(40):
        spec = sample_clip(index, 7, synth).spec
        estimates.append(read_qualities(render_clip(spec, config), spec, config, tol=10))
        truth.append(spec.qualities)
        head_first.append(spec.head_first)
    estimates, truth, head_first = np.array(estimates), np.array(truth), np.array(head_first)
    for step in range(3):
        assert np.abs(estimates[:, step] - truth[:, step]).max() < 0.6
    # A worse entry makes a bigger splash (of each entry kind's shape: head-first ones are taller).
    for kind in (True, False):
        rows = head_first == kind
        assert rows.sum() >= 8
        assert spearmanr(estimates[rows, 3], truth[rows, 2]).statistic < -0.9


def test_write_video_round_trip(tmp_path):
    frames = render_clip(SPEC)
    path = tmp_path / "clip.mp4"
    write_video(frames, path, 12.0, pick_codec(("libx264", "mpeg4")))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 12
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    assert decoded.shape == frames.shape
    # Near lossless: the mean error is a few levels (colour edges lose most to 4:2:0 chroma).
    assert np.abs(decoded.astype(int) - frames).mean() < 4
    assert not list(tmp_path.glob(".*tmp"))


def test_missing_codec_and_bad_render_settings():
    with pytest.raises(VideoError, match="none of the video encoders"):
        pick_codec(("no-such-codec",))
    with pytest.raises(ConfigError, match="render.size"):
        RenderConfig(size=33)
    with pytest.raises(ConfigError, match="at least one frame"):
        render_clip(_with(step_frames=(8, 0, 9)))


def test_x264_instruction_set_cap_is_deterministic_and_keeps_the_picture(tmp_path):
    # Capping x264's SIMD level (to stay off the AVX-512 paths, see VideoConfig.x264_asm) must
    # give the same bytes on every encode at that level, and the same picture as x264's own
    # choice. The levels are NOT byte-identical with one another on every CPU (CI's differed),
    # so across levels the decoded frames are compared, within the encoder's CRF tolerance.
    if pick_codec(("libx264", "none")) != "libx264":
        pytest.skip("this PyAV build has no libx264")
    from hieroaction.synth.render import VideoConfig

    frames = render_clip(SPEC)
    decoded = {}
    for level in ("AVX2", "AVX", "auto"):
        encoded = []
        for attempt in range(2 if level != "auto" else 1):
            path = tmp_path / f"{level}-{attempt}.mp4"
            write_video(frames, path, 12.0, "libx264", VideoConfig(x264_asm=level))
            encoded.append(path.read_bytes())
        assert len(set(encoded)) == 1, f"two encodes at {level} differ"
        with av.open(str(path)) as container:
            decoded[level] = np.stack(
                [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(int)
    # another level may encode a few macroblocks differently: the pictures stay as close to the
    # rendered frames as the capped level's (mean error about 2.5 at CRF 8), and to each other
    source = frames.astype(int)
    reference_error = np.abs(decoded["AVX2"] - source).mean()
    for level in ("AVX", "auto"):
        assert decoded[level].shape == source.shape
        assert np.abs(decoded[level] - decoded["AVX2"]).mean() < 1.5
        assert abs(np.abs(decoded[level] - source).mean() - reference_error) < 0.5
    with pytest.raises(ConfigError, match="video.x264_asm must be 'auto' or one of"):
        VideoConfig(x264_asm="SSE2")
