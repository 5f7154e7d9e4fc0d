"""Test data: one complete assessment, and unified records shaped like each dataset's."""

from __future__ import annotations

from hieroaction.data.records import Record
from hieroaction.domains.diving import parse_dive_number
from hieroaction.sar import Assessment, StepAssessment


def _dive(label: str) -> dict:
    return {"label": label, "attributes": parse_dive_number(label).attributes()}


def fixture_records() -> list[Record]:
    """One record per dataset shape, with ground truth that would be easy to spot in a text."""
    rows = [
        {  # FineDiving: steps, no fps, 3 counted judges
            "id": "FINADivingWorldCup2021_Men3m_final_r1/8", "dataset": "finediving",
            "domain": "diving", "split": "train",
            "video": {"frames_dir": "fd/x/8", "frame_template": "{:05d}.jpg",
                      "start_frame": 1200, "end_frame": 1299},
            "action": _dive("5253B"),
            "steps": [{"label": "Back", "start_frame": 0, "end_frame": 17},
                      {"label": "1.5 Twists", "start_frame": 18, "end_frame": 55},
                      {"label": "2.5 Soms.Pike", "start_frame": 56, "end_frame": 80},
                      {"label": "Entry", "start_frame": 81, "end_frame": 99}],
            "score": {"final": 77.76, "components": {"difficulty": 3.2, "execution": 24.3},
                      "judges": [8.0, 8.0, 8.3], "range": [0, 125]},
        },
        {  # FineDiving, mislabelled: the final score does not follow DD x execution
            "id": "FINADivingWorldCup2021_Women10m_final_r2/3", "dataset": "finediving",
            "domain": "diving", "video": {"frames_dir": "fd/y/3", "start_frame": 0,
                                          "end_frame": 69},
            "action": _dive("107C"),
            "steps": [{"label": "Forward", "start_frame": 0, "end_frame": 9},
                      {"label": "3.5 Soms.Tuck", "start_frame": 10, "end_frame": 59},
                      {"label": "Entry", "start_frame": 60, "end_frame": 69}],
            "score": {"final": 61.05, "components": {"difficulty": 3.0, "execution": 21.5},
                      "judges": [7.0, 7.0, 7.5]},
        },
        {  # MTL-AQA: 7 judges, commentary, no steps
            "id": "mtlaqa/01_17", "dataset": "mtlaqa", "domain": "diving",
            "video": {"frames_dir": "mtl/01", "start_frame": 3400, "end_frame": 3502,
                      "fps": 30.0},
            "action": _dive("407C"),
            "score": {"final": 83.52, "components": {"difficulty": 3.2, "execution": 26.1},
                      "judges": [8.5, 9.0, 8.5, 8.5, 8.5, 9.0, 9.5]},
            "commentary": "a lovely <rip> entry & \"no splash\" from the young diver",
        },
        {  # FineFS: elements with panel scores, 25 fps
            "id": "finefs/sp_017", "dataset": "finefs", "domain": "figure_skating",
            "video": {"path": "finefs/17.mp4", "start_frame": 0, "fps": 25.0},
            "action": {"label": "short program", "attributes": {"program": "short"}},
            "steps": [{"label": "3Lz+3T", "start_frame": 250, "end_frame": 300, "score": 10.83},
                      {"label": "FCSp4", "start_frame": 900, "end_frame": 1200, "score": 3.61},
                      {"label": "2A", "start_frame": 500, "end_frame": 540, "score": 4.17}],
            "score": {"final": 71.93, "components": {"tes": 39.87, "pcs": 33.06,
                                                     "deductions": 1.0}},
        },
        {  # Fis-V: totals only
            "id": "fisv/123", "dataset": "fisv", "domain": "figure_skating",
            "video": "fisv/123.mp4",
            "score": {"final": 58.27, "components": {"tes": 30.11, "pcs": 28.16,
                                                     "deductions": 0.0}},
        },
        {  # JIGSAWS: six GRS items, no steps
            "id": "jigsaws/Suturing_B001", "dataset": "jigsaws", "domain": "surgical",
            "video": {"path": "jigsaws/Suturing_B001_capture1.avi", "fps": 30.0},
            "action": {"label": "Suturing", "attributes": {"task": "Suturing", "surgeon": "B"}},
            "score": {"final": 19.0, "components": {
                "respect_for_tissue": 4.0, "suture_needle_handling": 3.0, "time_and_motion": 3.0,
                "flow_of_operation": 3.0, "overall_performance": 3.0,
                "quality_of_final_product": 3.0}},
        },
        {  # LOGO: actions without sub-scores, no components
            "id": "logo/tech_WorldChampionship_7", "dataset": "logo",
            "domain": "artistic_swimming",
            "video": {"frames_dir": "logo/7", "start_frame": 0, "end_frame": 499, "fps": 25.0},
            "action": {"label": "tech", "attributes": {"event": "tech"}},
            "steps": [{"label": "Hybrid", "start_frame": 0, "end_frame": 199},
                      {"label": "Acrobatic Movement", "start_frame": 200, "end_frame": 349},
                      {"label": "Pair Acrobatic", "start_frame": 350, "end_frame": 499}],
            "score": {"final": 87.2344},
        },
        {  # a user's own data: id, video, score
            "id": "c1", "video": "clip.mp4", "score": 7.25,
        },
        {  # the synthetic benchmark
            "id": "synth-000042", "dataset": "synth", "domain": "synth", "split": "train",
            "video": {"path": "synth/000042.mp4", "start_frame": 0, "end_frame": 47,
                      "fps": 12.0},
            "action": {"label": "inward-2-head",
                       "attributes": {"takeoff": "inward", "turns": 2, "entry": "head"}},
            "steps": [{"label": "inward take-off", "start_frame": 0, "end_frame": 11,
                       "score": 8.25},
                      {"label": "2 turns", "start_frame": 12, "end_frame": 35, "score": 6.5},
                      {"label": "head-first entry", "start_frame": 36, "end_frame": 47,
                       "score": 9.0}],
            "score": {"final": 73.6, "components": {"difficulty": 3.2, "execution": 23.0},
                      "judges": [7.5, 8.0, 7.5]},
            "commentary": "upright and balanced; a slight wobble off the axis; vertical",
        },
    ]
    return [Record.model_validate(row) for row in rows]


def example_assessment() -> Assessment:
    """A diving assessment with every kind of value, and characters that need escaping."""
    return Assessment(
        recognition_reasoning="Inward take-off, tight tuck & 3.5 somersaults <clean>.",
        action="407C",
        steps=[
            StepAssessment(label="Inward", start=0.0, end=0.84, quality=8.5,
                           analysis="Balanced \"hurdle\" and take-off."),
            StepAssessment(label="3.5 Soms.Tuck", start=0.84, end=3.24, quality=7.5,
                           analysis="Tight tuck, slight opening late."),
            StepAssessment(label="Entry", start=3.24, end=4.0, analysis="Small splash."),
        ],
        scoring_reasoning="DD 3.2 times execution 27 gives 86.4.",
        components={"difficulty": 3.2, "execution": 27.0},
        score=86.4,
    )
