#!/usr/bin/python3
"""Plots for IndexGrad experiments (Debian's python3-matplotlib, no network).

  /usr/bin/python3 tools/plot.py identity OUT_DIR
      Reads OUT_DIR/runs/<method>_n<n>_r<repeat>.csv and draws
      OUT_DIR/identity.png like figure 2 of Bloem et al. 2018: expected MSE
      of the rounded W against the step, mean and standard deviation over
      repeats, solid for the sparse layer, dashed for REINFORCE, one colour
      per n.

  /usr/bin/python3 tools/plot.py masks OUT_DIR
      Reads OUT_DIR/masks/<operator>_<target>_s0_*.csv and runs/*.csv and
      draws OUT_DIR/masks.png like figure 1 of Shekhar et al. 2023: per
      (operator, target) the target, the mask at several steps, and the IoU
      curves of every seed.

  /usr/bin/python3 tools/plot.py decoder OUT_DIR
      Reads OUT_DIR/decoder_<H>x<W>.csv (//experiments:train_mask_decoder;
      any CSV there with a pixel_accuracy column) and draws
      OUT_DIR/decoder_<H>x<W>.png beside it: training loss, and the IoU and
      pixel accuracy of the decoder's masks at evaluation steps.

  /usr/bin/python3 tools/plot.py sort OUT_DIR
      Reads OUT_DIR/runs/<method>_n<n>_s<seed>.csv (//experiments:sort_mnist)
      and draws OUT_DIR/sort_mnist.png: training loss and validation
      exact-match against the step, one panel per n, mean over seeds per
      method; and each OUT_DIR/levels_n<n>.csv as levels_n<n>.png like
      figure 7 of Bloem et al. 2018 (quicksort levels x_0 .. x_L on the
      left, intermediate targets t_0 .. t_L on the right).

  /usr/bin/python3 tools/plot.py attention OUT_DIR
      Reads OUT_DIR/runs/<method>.csv (//experiments:cluttered_attention)
      and draws OUT_DIR/attention.png (training loss and validation error
      against the step, one line per method); and OUT_DIR/glimpses.png
      like figure 4 of Bloem et al. 2018 from runs/<method>_glimpses.csv:
      per method, test images with the learned boxes (RAM: its finest
      patches, numbered by step), and the glimpse contents (blue positive,
      red negative).
"""
import csv
import glob
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_eval_curve(path, column):
    steps, values = [], []
    last = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get(column, "") == "":
                continue
            last[int(row["step"])] = float(row[column])  # resumed runs: last wins
    for step in sorted(last):
        steps.append(step)
        values.append(last[step])
    return steps, values


def plot_identity(out_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "runs", "*.csv"))):
        m = re.match(r"(\w+?)_n(\d+)_r(\d+)\.csv$", os.path.basename(path))
        if not m:
            continue
        runs.setdefault((m.group(1), int(m.group(2))), []).append(
            read_eval_curve(path, "eval_mse"))
    if not runs:
        sys.exit("plot.py: no runs under %s/runs" % out_dir)
    sizes = sorted({n for _, n in runs})
    colours = plt.cm.viridis([i / max(1, len(sizes) - 1) for i in range(len(sizes))])
    fig, ax = plt.subplots(figsize=(8, 5))
    for (method, n), curves in sorted(runs.items()):
        # Runs stop at different steps (early stop at exact I): extend each
        # with its last value so the mean is over all repeats.
        steps = sorted({s for c in curves for s in c[0]})
        table = []
        for s_list, v_list in curves:
            d = dict(zip(s_list, v_list))
            row, last = [], float("nan")
            for s in steps:
                last = d.get(s, last)
                row.append(last)
            table.append(row)
        mean = [sum(r[i] for r in table) / len(table) for i in range(len(steps))]
        std = [math.sqrt(sum((r[i] - mean[i]) ** 2 for r in table) / len(table))
               for i in range(len(steps))]
        colour = colours[sizes.index(n)]
        style = "-" if method == "sparse" else "--"
        ax.errorbar(steps, mean, yerr=std, linestyle=style, color=colour,
                    capsize=2, label="%s n=%d (%d runs)" % (method, n, len(curves)))
    ax.set_xlabel("training step (batch 64)")
    ax.set_ylabel("expected MSE of rounded W  (||W - I||² / n)")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_title("Learning the identity: sampled sparse layer (solid) vs REINFORCE (dashed)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(out_dir, "identity.png")
    fig.savefig(path, dpi=120)
    print("plot: wrote %s" % path)


def read_matrix(path):
    with open(path) as f:
        return [[float(v) for v in line.split(",")] for line in f if line.strip()]


def plot_masks(out_dir):
    snaps = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "masks", "*_s0_*.csv"))):
        m = re.match(r"([\w-]+?)_([\w-]+)_s0_(\w+)\.csv$", os.path.basename(path))
        if m:
            snaps.setdefault((m.group(1), m.group(2)), {})[m.group(3)] = path
    if not snaps:
        sys.exit("plot.py: no mask snapshots under %s/masks" % out_dir)
    rows = sorted(snaps)
    cols = 1 + max(len([k for k in v if k != "target"]) for v in snaps.values()) + 1
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.2 * len(rows)),
                             squeeze=False)
    for r, key in enumerate(rows):
        items = snaps[key]
        steps = sorted(k for k in items if k != "target")
        panels = [("target", items["target"])] + [("step %d" % int(k), items[k]) for k in steps]
        for c in range(cols - 1):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(panels):
                ax.imshow(read_matrix(panels[c][1]), cmap="gray", vmin=0, vmax=1)
                ax.set_title(panels[c][0], fontsize=8)
        axes[r][0].text(-0.3, 0.5, "%s\n%s" % key, transform=axes[r][0].transAxes,
                        ha="right", va="center", fontsize=8)
        ax = axes[r][cols - 1]
        for path in sorted(glob.glob(os.path.join(out_dir, "runs", "%s_%s_s*.csv" % key))):
            s_list, v_list = read_eval_curve(path, "iou")
            ax.plot(s_list, v_list, linewidth=1)
        ax.set_ylim(0, 1.02)
        ax.axhline(0.99, color="gray", linestyle=":", linewidth=0.8)
        ax.set_title("IoU (all seeds)", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    path = os.path.join(out_dir, "masks.png")
    fig.savefig(path, dpi=110)
    print("plot: wrote %s" % path)


def plot_decoder(out_dir):
    paths = []
    for path in sorted(glob.glob(os.path.join(out_dir, "*.csv"))):
        with open(path) as f:
            if "pixel_accuracy" in f.readline():
                paths.append(path)
    if not paths:
        sys.exit("plot.py: no decoder training CSV under %s" % out_dir)
    for path in paths:
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
        steps, loss = read_eval_curve(path, "loss")
        left.plot(steps, loss, linewidth=0.6)
        left.set_yscale("log")
        left.set_xlabel("step")
        left.set_title("training loss (KL divergence to the pixel masses)", fontsize=9)
        for column in ("iou", "pixel_accuracy"):
            s_list, v_list = read_eval_curve(path, column)
            right.plot(s_list, v_list, marker="o", label=column)
        right.set_ylim(0, 1.02)
        right.set_xlabel("step")
        right.legend(fontsize=8)
        right.set_title("masks of random points", fontsize=9)
        fig.tight_layout()
        png = path[:-4] + ".png"
        fig.savefig(png, dpi=110)
        plt.close(fig)
        print("plot: wrote %s" % png)


def read_column(path, column):
    last = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get(column, "") != "":
                last[int(row["step"])] = float(row[column])
    steps = sorted(last)
    return steps, [last[k] for k in steps]


def mean_curve(curves):
    """Mean over runs at the steps every run has."""
    common = set(curves[0][0])
    for steps, _ in curves[1:]:
        common &= set(steps)
    steps = sorted(common)
    means = []
    for k in steps:
        vals = [dict(zip(st, v))[k] for st, v in curves]
        means.append(sum(vals) / len(vals))
    return steps, means


def smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_sort(out_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "runs", "*.csv"))):
        m = re.match(r"(\w+?)_n(\d+)_s(\d+)\.csv$", os.path.basename(path))
        if m:
            runs.setdefault((m.group(1), int(m.group(2))), []).append(path)
    if not runs:
        sys.exit("plot.py: no runs under %s/runs" % out_dir)
    sizes = sorted({n for _, n in runs})
    methods = sorted({m for m, _ in runs})
    fig, axes = plt.subplots(2, len(sizes), figsize=(4.5 * len(sizes), 6.5), squeeze=False)
    for col, n in enumerate(sizes):
        for method in methods:
            paths = runs.get((method, n))
            if not paths:
                continue
            steps, loss = mean_curve([read_column(p, "loss") for p in paths])
            axes[0][col].plot(steps, smooth(loss, 25), label=method)
            steps, exact = mean_curve([read_column(p, "val_exact") for p in paths])
            axes[1][col].plot(steps, exact, marker="o", ms=3, label=method)
        axes[0][col].set_title("n = %d" % n)
        axes[0][col].set_ylabel("training loss (smoothed)")
        axes[1][col].set_ylabel("validation exact-match")
        axes[1][col].set_xlabel("step")
        axes[1][col].set_ylim(0, 1)
        axes[1][col].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "sort_mnist.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("plot: wrote %s" % path)
    for levels in sorted(glob.glob(os.path.join(out_dir, "levels_n*.csv"))):
        grid = read_matrix(levels)
        fig, ax = plt.subplots(figsize=(min(16, len(grid[0]) / 60.0), len(grid) / 60.0 + 0.8))
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title("quicksort levels x_0..x_L (left) and targets t_0..t_L (right), untrained keys",
                     fontsize=8)
        png = levels[:-4] + ".png"
        fig.savefig(png, dpi=110, bbox_inches="tight")
        plt.close(fig)
        print("plot: wrote %s" % png)


def read_glimpses(path):
    images, boxes, glimpses = {}, {}, {}
    with open(path) as f:
        for row in csv.reader(f):
            kind, i = row[0], int(row[1])
            if kind == "image":
                px = [float(v) for v in row[4:]]
                side = int(round(math.sqrt(len(px))))
                images[i] = (int(row[2]), int(row[3]),
                             [px[r * side:(r + 1) * side] for r in range(side)])
            elif kind == "box":
                boxes.setdefault(i, []).append([float(v) for v in row[3:7]])
            elif kind == "glimpse":
                k = int(row[3])
                v = [float(x) for x in row[4:]]
                glimpses.setdefault(i, []).append([v[r * k:(r + 1) * k] for r in range(k)])
    return images, boxes, glimpses


def plot_attention(out_dir):
    paths = sorted(p for p in glob.glob(os.path.join(out_dir, "runs", "*.csv"))
                   if not p.endswith("_glimpses.csv"))
    if not paths:
        sys.exit("plot.py: no runs under %s/runs" % out_dir)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    all_err = []
    for path in paths:
        method = os.path.basename(path)[:-4]
        steps, loss = read_eval_curve(path, "loss")
        axes[0].plot(steps, smooth(loss, 25), label=method)
        steps, err = read_eval_curve(path, "val_error")
        all_err += err
        axes[1].plot(steps, [100 * e for e in err], marker="o", ms=3, label=method)
    axes[0].set_ylabel("training loss (smoothed)")
    axes[1].set_ylabel("validation error (%)")
    if all_err and min(all_err) > 0:
        # Errors fall from 90 % to a few per cent: a log axis keeps the tail,
        # where long runs differ, readable.
        axes[1].set_yscale("log")
        ticks = [t for t in (0.5, 1, 2, 5, 10, 20, 50, 100)
                 if 50 * min(all_err) <= t <= 200 * max(all_err)]
        axes[1].set_yticks(ticks)
        axes[1].set_yticklabels(["%g" % t for t in ticks])
        axes[1].grid(True, which="major", axis="y", alpha=0.3)
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "attention.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("plot: wrote %s" % path)

    figs = []
    for path in sorted(glob.glob(os.path.join(out_dir, "runs", "*_glimpses.csv"))):
        images, boxes, glimpses = read_glimpses(path)
        if boxes:
            figs.append((os.path.basename(path)[:-len("_glimpses.csv")], images, boxes, glimpses))
    if not figs:
        return
    shown = 4
    rows = []
    for method, images, boxes, glimpses in figs:
        rows.append((method, images, boxes, None))
        rows.append((method, images, boxes, glimpses))
    fig, axes = plt.subplots(len(rows), shown, figsize=(2.6 * shown, 2.4 * len(rows)),
                             squeeze=False)
    for r, (method, images, boxes, glimpses) in enumerate(rows):
        for c in range(shown):
            ax = axes[r][c]
            ax.set_axis_off()
            if c not in images:
                continue
            label, pred, img = images[c]
            if glimpses is None:
                ax.imshow(img, cmap="gray", vmin=0, vmax=1)
                for g, (y0, x0, y1, x1) in enumerate(boxes.get(c, [])):
                    ax.add_patch(plt.Rectangle((min(x0, x1) - 0.5, min(y0, y1) - 0.5),
                                               abs(x1 - x0) + 1, abs(y1 - y0) + 1, fill=False,
                                               color="C%d" % (g % 10), lw=1))
                    if len(boxes[c]) > 1:
                        ax.text(x0, y0, str(g), color="C%d" % (g % 10), fontsize=6)
                ax.set_title("%s: label %d, predicted %d" % (method, label, pred), fontsize=7)
            else:
                tiles = glimpses.get(c, [])
                k = len(tiles[0])
                strip = [sum((t[y] + [0.0] for t in tiles), []) for y in range(k)]
                lim = max(1e-9, max(abs(v) for row in strip for v in row))
                ax.imshow(strip, cmap="RdBu", vmin=-lim, vmax=lim, interpolation="nearest")
                ax.set_title("%s glimpses" % method, fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "glimpses.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("plot: wrote %s" % path)


def main():
    figures = {"identity": plot_identity, "masks": plot_masks, "decoder": plot_decoder,
               "sort": plot_sort, "attention": plot_attention}
    if len(sys.argv) != 3 or sys.argv[1] not in figures:
        sys.exit(__doc__)
    figures[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
