"""Medians, ratios against the targets, the printed table, JSON/CSV and the PNG chart."""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Results:
    """Raw samples, keyed by (test, path, cipher, metric)."""
    raw: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, test: str, path: str, cipher: str, metric: str, value, unit: str,
            rnd: int = 0, **extra) -> None:
        self.raw.append({"test": test, "path": path, "cipher": cipher, "metric": metric,
                         "value": value, "unit": unit, "round": rnd, **extra})

    def median(self, test: str, path: str, cipher: str, metric: str) -> float | None:
        vals = [r["value"] for r in self.raw
                if (r["test"], r["path"], r["cipher"], r["metric"]) == (test, path, cipher, metric)
                and isinstance(r["value"], (int, float))]
        return statistics.median(vals) if vals else None


@dataclass
class Row:
    metric: str
    unit: str
    tunnel: float | None
    openssh: float | None | str
    openssh_tty: float | None | str
    direct: float | None
    ratio: float | None = None
    ratio_of: str = ""
    target: str = ""
    met: bool | None = None


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return a / b
    return None


def _best(values, higher_is_better: bool):
    nums = [v for v in values if isinstance(v, (int, float))]
    if not nums:
        return None
    return max(nums) if higher_is_better else min(nums)


def _three(res: Results, test: str, cipher: str, metric: str):
    """ftp-tunnel, ssh -N -L, ssh -tt -L medians of one metric."""
    return (res.median(test, "ftp-tunnel", cipher, metric),
            res.median(test, "openssh", cipher, metric),
            res.median(test, "openssh-tty", cipher, metric))


def build_rows(res: Results, ciphers: list[str], control: dict | None) -> list[Row]:
    """The summary table. Ratios against OpenSSH are against the better of its two variants."""
    rows: list[Row] = []
    ops = [("RETR", "passive"), ("RETR", "active"), ("STOR", "passive"), ("STOR", "active")]
    # Targets (issue 8): bulk >= 1.2x OpenSSH and client CPU <= 0.8x, in both setups; small
    # files <= 0.95x OpenSSH at its best. Ratios are against the better ssh variant.
    for bulk, small, where in (("bulk", "small", ""), ("bulk-veth", "small-veth", " veth")):
        for cipher in ciphers:
            c = cipher.split("@")[0] + where
            for op, mode in ops:
                name = f"{op} {mode}"
                ft, ssh, tty = _three(res, bulk, cipher, f"{name} MiB/s")
                direct = res.median(bulk, "direct", "", f"{name} MiB/s")
                if ft is None and direct is None:
                    continue
                if mode == "active":
                    ssh = tty = "n/a"
                r = _ratio(ft, _best((ssh, tty), True))
                rows.append(Row(f"bulk {name} [{c}]", "MiB/s", ft, ssh, tty, direct, r, "ssh",
                                ">= 1.2x ssh", None if r is None else r >= 1.2))
            for op, mode in ops:
                ft, ssh, tty = _three(res, bulk, cipher, f"{op} {mode} CPU s/GiB")
                if ft is None and ssh is None:
                    continue
                if mode == "active":
                    rows.append(Row(f"client CPU {op} {mode} [{c}]", "s/GiB", ft, "n/a", "n/a",
                                    None))
                    continue
                r = _ratio(ft, _best((ssh, tty), False))
                rows.append(Row(f"client CPU {op} {mode} [{c}]", "s/GiB", ft, ssh, tty, None, r,
                                "ssh", "<= 0.8x ssh", None if r is None else r <= 0.8))
            for op in ("RETR", "STOR"):
                # Every process's CPU (FTP client and server, SSH client, sshd, kernel) per
                # GiB: on a machine whose cores the whole pipeline saturates, throughput is
                # cores / this, so the SSH client's share bounds what it can gain.
                ft, ssh, tty = _three(res, bulk, cipher, f"{op} passive machine CPU s/GiB")
                direct = res.median(bulk, "direct", "", f"{op} passive machine CPU s/GiB")
                if ft is None and ssh is None:
                    continue
                rows.append(Row(f"machine CPU {op} passive [{c}]", "s/GiB", ft, ssh, tty, direct,
                                _ratio(ft, _best((ssh, tty), False)), "ssh"))
            ft, ssh, tty = _three(res, small, cipher, "seconds")
            direct = res.median(small, "direct", "", "seconds")
            if ft is not None or ssh is not None:
                r = _ratio(ft, _best((ssh, tty), False))
                count = next((x.get("files") for x in res.raw if x["test"] == small), "?")
                rows.append(Row(f"{count} x 4 KiB RETR, 1 session [{c}]", "s", ft, ssh, tty,
                                direct, r, "ssh", "<= 0.95x ssh",
                                None if r is None else r <= 0.95))
    link = [x for x in res.raw if x["test"] == "small-link" and x["cipher"]]
    if link:
        cipher, first = link[0]["cipher"], link[0]
        ft = res.median("small-link", "ftp-tunnel", cipher, "seconds")
        tty = res.median("small-link", "openssh-tty", cipher, "seconds")
        direct = res.median("small-link", "direct", "", "seconds")
        r = _ratio(ft, direct)
        rows.append(Row(f"{first['files']} x 4 KiB RETR over a {2 * first['link_ms']:g} ms RTT "
                        f"link [{cipher.split('@')[0]}]", "s", ft, "-", tty, direct, r,
                        "direct", "<= 1.5x direct", None if r is None else r <= 1.5))
    if control:
        def us(key, div=1):
            v = control.get(key)
            return None if v is None else v / 1000.0 / div
        line = us("component/noop_200_pair", 2)
        native = us("native/noop_200_pair", 2)
        rows.append(Row("control line NOOP/200 via component (pair/2)", "us", line, None, None,
                        None, _ratio(line, native), "native", "<= 2 us",
                        None if line is None else line <= 2.0))
        rows.append(Row("  same, native core", "us", native, None, None, None))
        rows.append(Row("PASV+227 rewrite, native core (pair/2)", "us",
                        us("native/pasv_227_pair", 2), None, None, None))
        rows.append(Row("PASV+227 via component, forward refused (pair/2)", "us",
                        us("component/pasv_227_refused_pair", 2), None, None, None))
        ready = us("component/session_setup")
        rows.append(Row("session ready (instantiate + first call)", "us", ready, None, None,
                        None, _ratio(ready, us("native/session_setup")), "native", "<= 50 us",
                        None if ready is None else ready <= 50.0))
    per = res.median("scale", "ftp-tunnel", "", "KiB per idle session")
    if per is not None:
        n = next((x.get("sessions") for x in res.raw if x["metric"] == "KiB per idle session"), "?")
        rows.append(Row(f"RSS per idle session ({n} sessions)", "KiB", per, None, None, None,
                        target="<= 64 KiB", met=per <= 64))
        rows.append(Row(f"  time to open + log in {n} sessions", "s",
                        res.median("scale", "ftp-tunnel", "", "open seconds"), None, None, None))
    agg = res.median("parallel", "ftp-tunnel", "", "aggregate MiB/s")
    dagg = res.median("parallel", "direct", "", "aggregate MiB/s")
    if agg is not None or dagg is not None:
        n = next((x.get("count") for x in res.raw if x["test"] == "parallel"), "?")
        rows.append(Row(f"{n} parallel RETR aggregate", "MiB/s", agg, None, None, dagg,
                        _ratio(agg, dagg), "direct"))
        rows.append(Row(f"{n} parallel RETR slowest/fastest", "ratio",
                        res.median("parallel", "ftp-tunnel", "", "fairness"), None, None,
                        res.median("parallel", "direct", "", "fairness")))
    for metric, label in (("baseline median ms", "NOOP RTT, no stall (median)"),
                          ("median ms", "NOOP RTT while a reader stalls (median)"),
                          ("max ms", "NOOP RTT while a reader stalls (max)")):
        vals = [res.median("slow", p, "", metric)
                for p in ("ftp-tunnel", "openssh", "openssh-tty", "direct")]
        if any(v is not None for v in vals):
            rows.append(Row(label, "ms", *vals))
    return rows


def render(rows: list[Row]) -> str:
    head = ["metric", "unit", "ftp-tunnel", "ssh -N -L", "ssh -tt -L", "direct", "ratio",
            "target", "met?"]
    body = []
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x {r.ratio_of}"
        met = "" if r.met is None else ("yes" if r.met else "NO")
        body.append([r.metric, r.unit, _fmt(r.tunnel), _fmt(r.openssh), _fmt(r.openssh_tty),
                     _fmt(r.direct), ratio, r.target, met])
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)


def write_files(out: Path, res: Results, rows: list[Row], meta: dict,
                control: dict | None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with open(out / "raw.csv", "w", newline="") as f:
        cols = ["test", "path", "cipher", "metric", "value", "unit", "round"]
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(res.raw)
    written.append(out / "raw.csv")
    summary = [r.__dict__ for r in rows]
    (out / "results.json").write_text(json.dumps(
        {"machine": meta, "summary": summary, "criterion_median_ns": control,
         "raw": res.raw, "notes": res.notes}, indent=2, default=str))
    written.append(out / "results.json")
    png = chart(out / "bench.png", rows)
    if png:
        written.append(png)
    return written


def chart(path: Path, rows: list[Row]) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    bulk = [r for r in rows if r.metric.startswith("bulk ")]
    small = [r for r in rows if "x 4 KiB RETR" in r.metric and "link" not in r.metric]
    if not bulk and not small:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [3, 1]})
    series = [("ftp-tunnel", "tunnel", "#1f77b4"), ("ssh -N -L", "openssh", "#ff7f0e"),
              ("ssh -tt -L (TCP_NODELAY)", "openssh_tty", "#d62728"),
              ("direct", "direct", "#7f7f7f")]
    for ax, group, ylabel in ((axes[0], bulk, "MiB/s (higher is better)"),
                              (axes[1], small, "seconds (lower is better)")):
        labels = [r.metric.replace("bulk ", "").replace(", 1 session", "") for r in group]
        width = 0.2
        for i, (name, attr, color) in enumerate(series):
            vals = [getattr(r, attr) for r in group]
            nums = [v if isinstance(v, (int, float)) else 0 for v in vals]
            xs = [j + (i - 1.5) * width for j in range(len(group))]
            ax.bar(xs, nums, width, label=name, color=color)
            for x, v in zip(xs, vals):
                if isinstance(v, str):
                    ax.text(x, 0, v, ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(range(len(group)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_title("Bulk transfer (median)")
    axes[1].set_title("Many small files (median)")
    axes[1].set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
