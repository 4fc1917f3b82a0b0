"""The machines the workbench was timed on: seconds per task training by CPU family and model, the reference
``dynnn plan`` estimates with before anything is cached (and the pages' sentence on how far machines differ)."""
from __future__ import annotations

# Seconds per task training of the default configuration, one torch thread, measured side by side with another
# job (a make all's train phase: wall x jobs / task trainings), keyed by CPU family and model (/proc/cpuinfo): two
# models of one family can differ by half (a family-25 model 17 trained make all in 35 min where model 1's figure
# said ~52), so a family alone does not name a reference. "family/model": (seconds, the CPU, the measurement).
REFERENCES = {
    "25/1": (10.6, "AMD EPYC", "make all from a fresh clone, 1,228 task trainings, 2026-12-02"),
    "25/17": (7.1, "AMD EPYC", "the project's machine table (DEVELOPERS.md), and make all's train phase of about 35 "
                               "min at 2 jobs on it, 2026-12-06"),
    "26/2": (4.18, "AMD EPYC", "make all from a fresh clone, 593 task trainings in 1,239 s at 2 jobs, 2026-12-04"),
    "6/167": (5.65, "Intel Xeon", "make all from a fresh clone, 872 task trainings in 2,463 s at 2 jobs, 2026-12-03"),
}
SLOWEST = max(REFERENCES, key=lambda k: REFERENCES[k][0])


def reference_seconds(signature: dict | None = None) -> tuple[float, str]:
    """(seconds per task training, where the figure comes from) for this machine (or a ``fingerprint.cpu()``-like
    `signature`), before anything is cached: its family and model's reference; else the same family's other model's,
    named as such; else the slowest reference. ``dynnn plan`` then corrects it from the runs cached so far."""
    from dynnn_lib.core.fingerprint import cpu

    c = signature or cpu()
    family, model = str(c["family"]), str(c["model_number"])
    key = f"{family}/{model}"
    if key in REFERENCES:
        return REFERENCES[key][0], (f"{REFERENCES[key][0]:.2f} s per task training (CPU family {family}, model "
                                    f"{model}'s reference)")
    kin = [k for k in REFERENCES if k.split("/")[0] == family]
    if kin:
        s, other = REFERENCES[kin[0]][0], kin[0].split("/")[1]
        return s, (f"{s:.2f} s per task training (no reference for CPU family {family}, model {model}: model "
                   f"{other}'s, which may differ by half; corrected from the runs as they are cached)")
    s = REFERENCES[SLOWEST][0]
    return s, (f"{s:.2f} s per task training (no reference for CPU family {family}, model {model}: the slowest "
               f"reference's, family {SLOWEST.replace('/', ', model ')})")
