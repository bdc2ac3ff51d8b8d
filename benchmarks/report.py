"""Tables of a benchmark run: ratios to PyTorch, scikit-learn, the JAX scan loop and the
GEMM-only loop, the targets, the end-to-end rows, and ``RESULTS.md`` with the machine
described."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JAX_SCAN", "Row", "ratio", "targets", "write_results"]

JAX_SCAN = "jax jit whole epoch (scan)"  # jax_contenders.SCAN (not imported: no JAX needed)
NL_OFF = "neuronlab (monitors off)"  # bench.py's contender name


@dataclass
class Row:
    """One contender's median throughput in one section (``rate`` in samples/s; for a
    time-to-target section it is 1/seconds so that ratios still read "times faster")."""

    section: str
    contender: str
    rate: float
    spread: float
    ceiling: float | None
    note: str = ""
    monitor_share: float | None = None  # the Monitor's own time / the rest of training
    agreement: Any = None  # jax_contenders.Agreement of the JAX scan row: the same work?

    @property
    def of_ceiling(self) -> float | None:
        """rate / the GEMM-only loop's rate (``ceiling``)."""
        return self.rate / self.ceiling if self.ceiling else None


def ratio(rows: list[Row], section: str, a: str, b: str) -> float | None:
    """rate(a) / rate(b) within ``section``, or None if either is missing."""
    rate = {r.contender: r.rate for r in rows if r.section == section}
    return rate[a] / rate[b] if a in rate and b in rate else None


def _fmt(x: float | None, kind: str) -> str:
    if x is None:
        return "–"
    return f"{x:.0%}" if kind == "%" else f"{x:.2f}×"


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each of the issue's targets that this run measured."""
    rows: list[Row] = result["rows"]
    sections = sorted({r.section for r in rows}, key=[r.section for r in rows].index)
    out: list[tuple[str, str, bool | None]] = []

    def add(name: str, value: float | None, ok: bool | None, kind: str = "×") -> None:
        if value is not None:
            out.append((name, _fmt(value, kind), ok))

    for s in sections:
        # neuronlab / the JAX scan loop, judged only if the two did the same work (the weight
        # check after one epoch from the same start in the same order)
        scan = next((r for r in rows if r.section == s and r.contender == JAX_SCAN), None)
        same = scan is None or scan.agreement is None or scan.agreement.ok
        if s.startswith("train large"):
            v = ratio(rows, s, "neuronlab", "pytorch")
            add(f"{s}: ≥ 1.1× PyTorch", v, v is not None and v >= 1.1)
            # against JAX and the GEMM-only loop: the same work, so neuronlab without the
            # Monitor (whose cost has its own target below); each timed fit is one epoch, so
            # the Monitor's once-per-run work (spectra after epoch 1) would count every time
            v = ratio(rows, s, NL_OFF, JAX_SCAN)
            add(f"{s}: monitors off ≥ 1.05× JAX (jit whole epoch, scan)"
                + ("" if same else " — JAX did other work, not judged"), v,
                (v >= 1.05) if same and v is not None else None)
            nl_row = next(r for r in rows if r.section == s and r.contender == NL_OFF)
            c = nl_row.of_ceiling
            add(f"{s}: monitors off ≥ 85% of the GEMM-only loop", c,
                c is not None and c >= 0.85, "%")
        if s.startswith("train small"):
            v = ratio(rows, s, "neuronlab", "pytorch")
            add(f"{s}: ≥ 2.5× PyTorch", v, v is not None and v >= 2.5)
            v = ratio(rows, s, NL_OFF, JAX_SCAN)
            add(f"{s}: monitors off ≥ 1.25× JAX (jit whole epoch, scan)"
                + ("" if same else " — JAX did other work, not judged"), v,
                (v >= 1.25) if same and v is not None else None)
        v = ratio(rows, s, "neuronlab", "scikit-learn")
        add(f"{s}: ≥ 2× scikit-learn", v, v is not None and v >= 2.0)
        if s.startswith("train"):
            # The monitor's own time, clocked inside its hooks over a 3-epoch fit: a ratio of
            # two throughputs (on vs off) swings by the machine's noise (±20-50% here).
            share = next((r.monitor_share for r in rows if r.section == s
                          and r.contender == "neuronlab" and r.monitor_share is not None), None)
            add(f"{s}: monitors cost ≤ 5%", share, share is not None and share <= 0.05, "%")
    mm = result.get("memmap")
    if mm:
        ok = mm["peak_rss_mib"] < 600 if mm["gib"] >= 2 else None
        out.append((f"memmap {mm['gib']:g} GiB: peak RSS < 600 MiB",
                    f"{mm['peak_rss_mib']:.0f} MiB", ok))
    l2 = result.get("l2")
    if l2:
        v = l2["wall"]["l2"] / l2["wall"]["no l2"]
        out.append((f"L2 under load ({l2['busy']} busy processes): alpha=1e-4 ≤ 1.2× alpha=0",
                    _fmt(v, "×"), v <= 1.2))
    for e in result.get("e2e") or []:
        if e.target is not None:
            out.append((f"{e.name}: ≤ {e.target:g} s", e.shown(), e.met))
    return out


def _load(v: Any) -> str:
    return "–" if not v else " / ".join(f"{x:.1f}" for x in v)


def _section_table(rows: list[Row], section: str) -> list[str]:
    lines = [f"### {section}", "",
             ("| contender | samples/s (median) | spread | × PyTorch | × scikit-learn "
              "| × JAX scan | of GEMM-only loop |"),
             "|---|---:|---:|---:|---:|---:|---:|"]
    if section.startswith("digits"):
        lines[2] = ("| contender | result (median over seeds) | | × PyTorch | × scikit-learn "
                    "| | |")
    ours = [r for r in rows if r.section == section]
    for r in ours:
        main = r.note if r.note else f"{r.rate:,.0f}"
        lines.append(
            f"| {r.contender} | {main} | {'' if r.note else f'±{r.spread:.0%}'} "
            f"| {_fmt(ratio(rows, section, r.contender, 'pytorch'), '×')} "
            f"| {_fmt(ratio(rows, section, r.contender, 'scikit-learn'), '×')} "
            f"| {_fmt(ratio(rows, section, r.contender, JAX_SCAN), '×')} "
            f"| {_fmt(r.of_ceiling, '%')} |")
    ceiling = next((r.ceiling for r in ours if r.ceiling), None)
    if ceiling:
        what = "GEMM-only loop (np.matmul)" if section.startswith("train") else \
            "GEMM-only loop (forward np.matmul)"
        lines.append(f"| *{what}* | {ceiling:,.0f} | | | | | 100% |")
    lines.append("")
    for r in ours:
        a = r.agreement
        if a is not None:
            lines += [(f"Weight check (not timed): {r.contender} and neuronlab trained one epoch "
                       f"of {a.rows} rows ({a.steps} steps) from the same initial weights in the "
                       f"same order; median |Δw|/|update| = {a.update:.1e} (tolerance "
                       f"{a.tolerance:g}), ‖Δw‖/‖w‖ = {a.weights:.1e}: "
                       + ("the same work." if a.ok else
                          "**THE WEIGHTS DISAGREE: not the same work; this section's JAX "
                          "ratios mean nothing.**")), ""]
    return lines


def _e2e_table(e2e: list[Any]) -> list[str]:
    lines = ["## End to end", "",
             ("Fresh processes of the benchmark's environment (`benchmarks/e2e.py`), median "
              "wall time from the parent's clock; the start-up rows after one warm-up round."),
             "", "| command | median | spread | runs | target |", "|---|---:|---:|---:|---|"]
    for e in e2e:
        target = "" if e.target is None else (
            f"≤ {e.target:g} s: {'met' if e.met else '**not met**'}")
        shown = e.shown() + (f" {e.note}" if e.note else "")
        lines.append(f"| `{e.name}` | {shown} | ±{e.spread:.0%} | {e.runs} | {target} |")
    return [*lines, ""]


def write_results(path: Path, result: dict[str, Any], *, notes: str = "") -> None:
    """Write the markdown report of one run to ``path``."""
    m, rows, cfg = result["machine"], result["rows"], result["config"]
    lines = [
        "# Benchmark results",
        "",
        ("Written by `python benchmarks/bench.py` (`make bench`); one process, contenders "
        "interleaved, median of the repetitions. Spread = (max − min) / median of the "
        "repetitions: the noise of a shared machine."),
        "",
        "| machine | |", "|---|---|",
        f"| date | {m['date']} |",
        f"| CPU | {m['cpu']} ({m['cores']} cores) |",
        (f"| load average (1, 5, 15 min) | start {_load(m.get('load_average'))}, "
        f"end {_load(m.get('load_average_end'))} (other work on the machine) |"),
        f"| Python / NumPy | {m['python']} / {m['numpy']} |",
        f"| BLAS | {m['blas']}, {m['blas_threads']} threads (PyTorch set to the same) |",
        f"| PyTorch / scikit-learn | {m['torch']} / {m['sklearn']} |",
        f"| JAX | {m.get('jax', 'not run')} |",
        f"| neuronlab | {m['neuronlab']}, {m.get('kernels', 'NumPy code')} |",
        f"| run | reps={cfg.reps}, large rows={cfg.large_rows}, small rows={cfg.small_rows} |",
        "",
    ]
    if result["ceilings"]:
        lines += ["## GEMM-only loop", "",
                  ("Best float32 `np.matmul` time of every product of a step at its real shape "
                  "(forward, dW, dX except the input layer), summed: the samples/s of a loop that "
                  "did nothing but its GEMMs (measured at the start and the end of the run, the "
                  "faster kept). The tables give every contender as a % of it."), "",
                  ("| network | batch | GEMM-only loop, training (samples/s) | GFLOP/s "
                   "| inference (forward GEMMs) | fastest GEMM |"),
                  "|---|---:|---:|---:|---:|---:|"]
        for c in result["ceilings"].values():
            lines.append(f"| {'-'.join(map(str, c.sizes))} | {c.batch} | {c.train_rate:,.0f} "
                         f"| {c.train_gflops:.0f} | {c.infer_rate:,.0f} "
                         f"| {c.peak_gflops:.0f} GFLOP/s |")
        lines.append("")
    tg = targets(result)
    if tg:
        lines += ["## Targets", "", "| target | measured | met |", "|---|---:|:---:|"]
        lines += [f"| {t} | {v} | {'–' if ok is None else ('yes' if ok else '**no**')} |"
                  for t, v, ok in tg]
        lines.append("")
    lines += ["## Throughput", ""]
    for section in dict.fromkeys(r.section for r in rows):
        lines += _section_table(rows, section)
    if result.get("e2e"):
        lines += _e2e_table(result["e2e"])
    mm = result.get("memmap")
    if mm:
        lines += ["## Memory", "",
                  (f"Training 3072-512-512-10 for one epoch ({mm['rows']:,} rows, batch 256, "
                  f"Trainer defaults) from a memory-mapped {mm['file_mib']:,.0f} MiB `.npy`, in a "
                  f"fresh process: peak RSS **{mm['peak_rss_mib']:.0f} MiB** (after imports "
                  f"{mm['baseline_rss_mib']:.0f} MiB), {mm['seconds']:.1f} s."), ""]
    l2 = result.get("l2")
    if l2:
        lines += ["## L2 under load", "",
                  (f"`NeuralNetClassifier(hidden_layer_sizes=(256,), epochs={l2['epochs']})` on "
                   f"digits with `alpha=1e-4` and `alpha=0`, {l2['reps']} interleaved repetitions "
                   f"while {l2['busy']} busy processes run (`benchmarks/l2_load.py`); medians."), "",
                  "| | alpha=1e-4 | alpha=0 | ratio |", "|---|---:|---:|---:|"]
        for kind, what in (("wall", "wall seconds"), ("cpu", "CPU seconds of the process")):
            a, b = l2[kind]["l2"], l2[kind]["no l2"]
            lines.append(f"| {what} | {a:.2f} | {b:.2f} | {a / b:.2f}× |")
        lines.append("")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    path.write_text("\n".join(lines))
