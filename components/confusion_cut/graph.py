"""The ConfusionCut artifact's files: writing them (atomically: pipeline/core/storage.py) and reading them back.

confusion.json  {classes, matrix (rows: true class, columns: predicted), split, examples, skipped, accuracy}
cut.json        {classes, side_of (0/1 per class, label-id order), sides (class names per side), value,
                 upper_bound, total_weight, exact, method, cut_edges and kept_edges ([a, b, weight], heaviest
                 first), split, examples, accuracy}
confusion_graph.png  classes on a circle, side A left and side B right, coloured by side; edge width grows
                 with the number of confusions; cut edges red, edges inside a side grey and dashed.
"""
import io
import json
import os
from typing import Dict, List

import numpy as np
import tensorflow as tf

from tfx_tabular.components.confusion_cut import maxcut
from tfx_tabular.components.confusion_cut.spec import CONFUSION_FILE, CUT_FILE, GRAPH_FILE
from tfx_tabular.pipeline.core import storage

SIDE_COLOURS = ('#4C72B0', '#DD8452')
SIDE_NAMES = ('A', 'B')


def _edges(names: List[str], w: np.ndarray, sides: np.ndarray, cut: bool) -> List[list]:
    n = len(names)
    edges = [[names[i], names[j], float(w[i, j])] for i in range(n) for j in range(i + 1, n)
             if w[i, j] > 0 and (sides[i] != sides[j]) == cut]
    return sorted(edges, key=lambda e: -e[2])


def plot_graph(names: List[str], w: np.ndarray, cut: maxcut.Cut, title: str) -> bytes:
    """PNG bytes of the confusion graph with the cut: side A on the left arc, side B on the right."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(names)
    inside = n <= 12 and max(len(name) for name in names) <= 6  # names inside the nodes, else beside them
    spread = 60 if n <= 12 else 75
    positions = {}
    for side, (low, high) in enumerate([(180 - spread, 180 + spread), (-spread, spread)]):
        members = cut.side(side)
        angles = np.radians(np.linspace(low, high, len(members)) if len(members) > 1 else [(low + high) / 2])
        for i, a in zip(members, angles):
            positions[i] = (np.cos(a), np.sin(a))
    heaviest = w.max() if w.max() > 0 else 1.0
    size = max(7.0, 0.4 * n)  # inches: room for every node as classes grow
    fig, ax = plt.subplots(figsize=(size + 0.5, size))
    for crossing in (False, True):  # cut edges drawn on top
        for i in range(n):
            for j in range(i + 1, n):
                if w[i, j] <= 0 or (cut.sides[i] != cut.sides[j]) != crossing:
                    continue
                (x0, y0), (x1, y1) = positions[i], positions[j]
                ax.plot([x0, x1], [y0, y1], color='#C44E52' if crossing else '#999999',
                        linestyle='-' if crossing else '--', linewidth=0.8 + 7.0 * w[i, j] / heaviest,
                        alpha=0.85 if crossing else 0.6, zorder=1, solid_capstyle='round')
                if n <= 15 and w[i, j] >= 0.25 * heaviest:  # numbers only where they stay readable
                    ax.text((x0 + x1) / 2, (y0 + y1) / 2, f'{w[i, j]:.0f}', fontsize=8, ha='center',
                            va='center', zorder=3, bbox=dict(boxstyle='round,pad=0.15', fc='white', lw=0))
    for i, (x, y) in positions.items():
        side = int(cut.sides[i])
        ax.scatter([x], [y], s=1200 if inside else 250, color=SIDE_COLOURS[side], zorder=2, edgecolors='white',
                   linewidths=1.5)
        if inside:
            ax.text(x, y, names[i], ha='center', va='center', fontsize=9 if len(names[i]) <= 4 else 7,
                    color='white', weight='bold', zorder=4)
        else:
            ax.text(x + (-0.09 if side == 0 else 0.09), y, names[i], ha='right' if side == 0 else 'left',
                    va='center', fontsize=8, zorder=4)
    for side in (0, 1):
        ax.scatter([], [], s=120, color=SIDE_COLOURS[side], label=f'side {SIDE_NAMES[side]}')
    ax.plot([], [], color='#C44E52', linewidth=3, label='cut edge (confusions across)')
    ax.plot([], [], color='#999999', linestyle='--', linewidth=2, label='edge within a side')
    ax.legend(loc='lower center', bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False, fontsize=9)
    ax.set_title(title, fontsize=10)
    reach = 1.3 if inside else 1.25 + 0.025 * max(len(name) for name in names)
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect('equal')
    ax.axis('off')
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    return buffer.getvalue()


def write_outputs(uri: str, names: List[str], matrix: np.ndarray, cut: maxcut.Cut, split: str,
                  skipped: int = 0) -> Dict:
    """Writes the three files into `uri`; returns cut.json's content."""
    w = maxcut.confusion_graph(matrix)
    examples = int(matrix.sum())
    accuracy = float(np.trace(matrix) / examples) if examples else 0.0
    confusion = {'classes': names, 'matrix': matrix.astype(int).tolist(), 'split': split, 'examples': examples,
                 'skipped': skipped, 'accuracy': accuracy}
    result = {
        'classes': names, 'side_of': [int(s) for s in cut.sides],
        'sides': [[names[i] for i in cut.side(0)], [names[i] for i in cut.side(1)]],
        'value': cut.value, 'upper_bound': cut.upper_bound, 'total_weight': maxcut.total_weight(w),
        'exact': cut.exact, 'method': cut.method,
        'cut_edges': _edges(names, w, cut.sides, True), 'kept_edges': _edges(names, w, cut.sides, False),
        'split': split, 'examples': examples, 'accuracy': accuracy,
    }
    quality = 'maximum cut' if cut.exact else f'cut (upper bound {cut.upper_bound:.1f})'
    title = (f'Confusions on {split!r} ({examples} examples, accuracy {accuracy:.3f}):\n'
             f'{quality} {cut.value:.0f} of {result["total_weight"]:.0f} confusions cross the sides')
    tf.io.gfile.makedirs(uri)
    storage.write_bytes(os.path.join(uri, CONFUSION_FILE), json.dumps(confusion, indent=1).encode())
    storage.write_bytes(os.path.join(uri, GRAPH_FILE), plot_graph(names, w, cut, title))
    storage.write_bytes(os.path.join(uri, CUT_FILE), json.dumps(result, indent=1).encode())  # last: its presence means done
    return result


def read_cut(uri: str) -> Dict:
    with tf.io.gfile.GFile(os.path.join(uri, CUT_FILE)) as f:
        return json.load(f)


def read_confusion(uri: str) -> Dict:
    with tf.io.gfile.GFile(os.path.join(uri, CONFUSION_FILE)) as f:
        return json.load(f)
