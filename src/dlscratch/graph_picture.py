"""The computational graph of chapter 5 as a picture, drawn from the layers a user ran.

The book draws the apple and orange example as a graph: a circle for each × and +
node, the forward value above each edge and, in red, the backward value below it. This
module draws that picture from MulLayer and AddLayer objects after their forward (and,
if run, backward) calls. You describe the wiring with one step per forward line, in the
order they ran, using the names of the book's variables::

    apple_price = mul_apple_layer.forward(apple, apple_num)
    ...
    graph = ComputationalGraph([
        ("apple_price", mul_apple_layer, "apple", "apple_num"),
        ...
    ])

Every number in the picture is read from the layers: the inputs each node cached (x, y),
its output (out), the gradient it received (dout) and those it returned (dx, dy). The
wiring is checked against them, so a step that names the wrong input raises ValueError
instead of drawing a graph that did not run. Nodes whose backward has not run yet are
drawn with forward values only.

In a notebook a ComputationalGraph shows itself as SVG; ``save`` writes .svg (written
here as text) or .png (through matplotlib); ``python -m dlscratch.graph_picture`` writes
the book's examples.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from dlscratch.files import write_atomically
from dlscratch.layers.graph import AddLayer, MulLayer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ComputationalGraph",
    "Step",
    "add_arguments",
    "apple_example",
    "apple_orange_example",
    "main",
    "run",
]

Step = tuple[str, Any, str, str]
"""(output name, layer, name of input x, name of input y): one forward call."""

SYMBOLS = {MulLayer: "\u00d7", AddLayer: "+"}  # × and +
FORWARD_COLOR = "#222222"
BACKWARD_COLOR = "#d62728"

# layout, in pixels
_COLUMN = 150  # between columns of nodes
_ROW = 80  # between inputs stacked vertically
_RADIUS = 18
_FONT = 14
_CHAR = 9  # a generous width of one character, to size the margins
_LABEL_AT = 0.45  # where along an edge its values sit: before the middle, where edges are apart
_OUTPUT_EDGE = 110


@dataclass(frozen=True)
class _Text:
    x: float
    y: float  # the baseline
    text: str
    color: str = FORWARD_COLOR
    anchor: str = "middle"  # SVG's text-anchor: start, middle or end
    size: int = _FONT


@dataclass(frozen=True)
class _Arrow:
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class _Node:
    x: float
    y: float
    symbol: str


@dataclass(frozen=True)
class _Edge:
    """One arrow of the graph: from a graph input or a node's output to a node or the end."""

    source: str  # a graph input's name or the output name of a step
    target: int | None  # the index of the consuming step; None for a graph output
    forward: Any
    backward: Any  # None when the backward pass has not reached this edge


class ComputationalGraph:
    """A picture of MulLayer/AddLayer nodes wired as the steps say, with their values.

    Parameters
    ----------
    steps : sequence of (str, layer, str, str)
        One (output name, layer, x name, y name) per forward call, in the order they ran.
        A name that no step outputs is an input of the graph; a step output no other step
        uses is an output of the graph.
    title : str or None, default None
        A line drawn above the graph.

    Raises
    ------
    ValueError
        When a layer has not run forward, when a name is used before the step that
        outputs it, or when the values the layers hold disagree with the wiring (a node's
        cached input differs from the output it is said to come from, or a node's dout
        from the sum of the gradients its consumers returned).
    """

    def __init__(self, steps: Sequence[Step], *, title: str | None = None) -> None:
        self.steps = [_check_step(index, step) for index, step in enumerate(steps)]
        if not self.steps:
            raise ValueError("ComputationalGraph needs at least one step")
        self.title = title
        self._producer = _producers(self.steps)
        self._edges = self._connect()
        self._check_backward()

    # -- the graph ---------------------------------------------------------------------

    def _connect(self) -> list[_Edge]:
        """The edges, each with the values the layers hold for it; checks them against the wiring."""
        edges = []
        first_value: dict[str, Any] = {}
        for index, (out_name, layer, *inputs) in enumerate(self.steps):
            gradients = (layer.dx, layer.dy) if _ran_backward(layer) else (None, None)
            for name, value, gradient in zip(inputs, (layer.x, layer.y), gradients, strict=True):
                expected = (
                    self._value_of(name) if name in self._producer else first_value.setdefault(name, value)
                )
                if not _same(expected, value):
                    raise ValueError(
                        f"step {index} ({out_name}) says its input is {name} = {_format(expected)}, "
                        f"but its {type(layer).__name__} received {_format(value)}: "
                        "are the steps wired as the code ran?"
                    )
                edges.append(_Edge(name, index, value, gradient))
        consumed = {edge.source for edge in edges}
        for out_name, layer, *_ in self.steps:
            if out_name not in consumed:
                edges.append(_Edge(out_name, None, layer.out, layer.dout if _ran_backward(layer) else None))
        return edges

    def _value_of(self, name: str) -> Any:
        return self.steps[self._producer[name]][1].out

    def _check_backward(self) -> None:
        """Each node's dout must be the sum of the gradients its consumers returned."""
        for out_name, layer, *_ in self.steps:
            incoming = [
                edge.backward for edge in self._edges if edge.source == out_name and edge.target is not None
            ]
            if not _ran_backward(layer) or not incoming or any(g is None for g in incoming):
                continue
            total = sum(incoming[1:], start=incoming[0])
            if not np.allclose(total, layer.dout):
                raise ValueError(
                    f"the node outputting {out_name} received dout {_format(layer.dout)} in its backward, "
                    f"but the nodes using {out_name} returned {_format(total)} for it"
                )

    @property
    def inputs(self) -> list[str]:
        """The names of the graph's inputs, in the order the steps first use them."""
        return list(dict.fromkeys(e.source for e in self._edges if e.source not in self._producer))

    # -- layout --------------------------------------------------------------------------

    def _layout(self) -> tuple[list[_Node | _Arrow | _Text], float, float]:
        """The picture as nodes, arrows and texts in pixels, with its width and height."""
        column = _columns(self.steps, self._producer)
        row = _rows(self.steps, self._producer)
        input_column = {
            name: min(column[e.target] for e in self._edges if e.source == name) - 1 for name in self.inputs
        }
        left = 18 + _CHAR * max(len(name) for name in self.inputs)
        top = 56 if self.title else 24

        def position(name: str, is_input: bool) -> tuple[float, float]:
            col = input_column[name] if is_input else column[self._producer[name]]
            return left + _COLUMN * col, top + _ROW * row[name]

        shapes: list[_Node | _Arrow | _Text] = []
        for out_name, layer, *_ in self.steps:
            shapes.append(_Node(*position(out_name, False), SYMBOLS[type(layer)]))
        for name in self.inputs:
            x, y = position(name, True)
            shapes.append(_Text(x - 6, y + 5, name, anchor="end"))
        width = 0.0
        for edge in self._edges:
            is_input = edge.source not in self._producer
            x0, y0 = position(edge.source, is_input)
            if edge.target is None:
                x1, y1 = x0 + _OUTPUT_EDGE, y0
                shapes.append(_Text(x1 + 6, y1 + 5, edge.source, anchor="start"))
                width = max(width, x1 + 12 + _CHAR * len(edge.source))
            else:
                x1, y1 = position(self.steps[edge.target][0], False)
            arrow = _shorten(
                x0,
                y0,
                x1,
                y1,
                start=0 if is_input else _RADIUS,
                end=_RADIUS if edge.target is not None else 0,
            )
            shapes.append(arrow)
            label_x = arrow.x0 + _LABEL_AT * (arrow.x1 - arrow.x0)
            label_y = arrow.y0 + _LABEL_AT * (arrow.y1 - arrow.y0)
            shapes.append(_Text(label_x, label_y - 6, _format(edge.forward)))
            if edge.backward is not None:
                shapes.append(_Text(label_x, label_y + 18, _format(edge.backward), color=BACKWARD_COLOR))
        height = top + _ROW * max(row.values()) + 50
        legend = "forward values above the edges, backward values (red) below"
        shapes.append(_Text(12, height - 12, legend, anchor="start", size=11))
        width = max(width, 24 + 0.6 * 11 * len(legend))
        if self.title:
            shapes.append(_Text(12, 24, self.title, anchor="start", size=16))
            width = max(width, 24 + 0.6 * 16 * len(self.title))
        return shapes, width, height

    # -- output ----------------------------------------------------------------------------

    def to_svg(self) -> str:
        """The picture as an SVG document (text)."""
        shapes, width, height = self._layout()
        lines = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="{_FONT}">',
            '<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
            'markerHeight="8" orient="auto">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{FORWARD_COLOR}"/></marker></defs>',
            f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        ]
        for shape in shapes:
            if isinstance(shape, _Arrow):
                lines.append(
                    f'<line x1="{shape.x0:.1f}" y1="{shape.y0:.1f}" x2="{shape.x1:.1f}" y2="{shape.y1:.1f}" '
                    f'stroke="{FORWARD_COLOR}" stroke-width="1.5" marker-end="url(#arrowhead)"/>'
                )
            elif isinstance(shape, _Node):
                lines.append(
                    f'<circle cx="{shape.x:.1f}" cy="{shape.y:.1f}" r="{_RADIUS}" fill="white" '
                    f'stroke="{FORWARD_COLOR}" stroke-width="1.5"/>'
                )
                lines.append(
                    f'<text x="{shape.x:.1f}" y="{shape.y + 7:.1f}" text-anchor="middle" font-size="20">'
                    f"{escape(shape.symbol)}</text>"
                )
            else:
                lines.append(
                    f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" text-anchor="{shape.anchor}" '
                    f'font-size="{shape.size}" fill={quoteattr(shape.color)}>{escape(shape.text)}</text>'
                )
        lines.append("</svg>")
        return "\n".join(lines) + "\n"

    def to_figure(self) -> Figure:
        """The same picture as a matplotlib Figure (one pixel per point at 100 dpi)."""
        # imported here: the SVG needs no matplotlib, and importing it takes a third of a second
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle

        shapes, width, height = self._layout()
        figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.set(xlim=(0, width), ylim=(height, 0))
        axes.set_axis_off()
        alignment = {"start": "left", "middle": "center", "end": "right"}
        points = 72 / 100  # font size: pixels to points
        for shape in shapes:
            if isinstance(shape, _Arrow):
                axes.annotate(
                    "",
                    xy=(shape.x1, shape.y1),
                    xytext=(shape.x0, shape.y0),
                    arrowprops={
                        "arrowstyle": "-|>",
                        "color": FORWARD_COLOR,
                        "lw": 1.5,
                        "shrinkA": 0,
                        "shrinkB": 0,
                    },
                )
            elif isinstance(shape, _Node):
                axes.add_patch(
                    Circle((shape.x, shape.y), _RADIUS, facecolor="white", edgecolor=FORWARD_COLOR, lw=1.5)
                )
                axes.text(shape.x, shape.y, shape.symbol, ha="center", va="center", fontsize=20 * points)
            else:
                axes.text(
                    shape.x,
                    shape.y,
                    shape.text,
                    ha=alignment[shape.anchor],
                    va="baseline",
                    color=shape.color,
                    fontsize=shape.size * points,
                )
        return figure

    def save(self, path: str | Path) -> Path:
        """Write the picture to path: .svg as SVG text, .png through matplotlib."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".svg":
            svg = self.to_svg().encode("utf-8")
            write_atomically(path, lambda file: file.write(svg))  # never a truncated picture
        elif suffix == ".png":
            from dlscratch.plot import save_figure

            save_figure(self.to_figure(), path)
        else:
            raise ValueError(
                f"cannot write a graph picture as {suffix or 'a file without suffix'}: use .svg or .png"
            )
        return path

    def _repr_svg_(self) -> str:
        """Jupyter shows the graph as a picture."""
        return self.to_svg()

    def __repr__(self) -> str:
        names = ", ".join(f"{name}={type(layer).__name__}({x}, {y})" for name, layer, x, y in self.steps)
        return f"ComputationalGraph({names})"


# -- the book's examples -------------------------------------------------------------------


def apple_example() -> list[Step]:
    """The book's first example (figure 5-16), run forward and backward: 2 apples at 100, tax 1.1."""
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    mul_tax_layer.forward(apple_price, tax)

    dapple_price, _ = mul_tax_layer.backward(1)
    mul_apple_layer.backward(dapple_price)
    return [
        ("apple_price", mul_apple_layer, "apple", "apple_num"),
        ("price", mul_tax_layer, "apple_price", "tax"),
    ]


def apple_orange_example() -> list[Step]:
    """The book's apples and oranges (figure 5-17), run forward and backward: price 715."""
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    mul_tax_layer.forward(all_price, tax)

    dall_price, _ = mul_tax_layer.backward(1)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    mul_orange_layer.backward(dorange_price)
    mul_apple_layer.backward(dapple_price)
    return [
        ("apple_price", mul_apple_layer, "apple", "apple_num"),
        ("orange_price", mul_orange_layer, "orange", "orange_num"),
        ("all_price", add_apple_orange_layer, "apple_price", "orange_price"),
        ("price", mul_tax_layer, "all_price", "tax"),
    ]


EXAMPLES = {"apple": apple_example, "apple-orange": apple_orange_example}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the graph command: --example and --out."""
    parser.add_argument(
        "--example",
        choices=sorted(EXAMPLES),
        default="apple-orange",
        help="which of the book's graphs (default: apple-orange)",
    )
    parser.add_argument(
        "--out", type=Path, help="file to write, .svg or .png (default: SVG on standard output)"
    )


def run(args: argparse.Namespace) -> int:
    """Draw the example args names into args.out (or print its SVG); returns the exit status."""
    graph = ComputationalGraph(EXAMPLES[args.example](), title=f"the {args.example} example of chapter 5")
    if args.out is None:
        sys.stdout.write(graph.to_svg())
    else:
        graph.save(args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlscratch.graph_picture [--example NAME] [--out FILE]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m dlscratch.graph_picture",
        description="Draw a computational graph of chapter 5 with its forward and backward values.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError) as error:
        print(f"dlscratch: {error}", file=sys.stderr)
        return 2


# -- helpers -------------------------------------------------------------------------------------


def _check_step(index: int, step: Step) -> Step:
    if not (isinstance(step, tuple) and len(step) == 4):
        raise ValueError(f"step {index} must be (output name, layer, x name, y name), got {step!r}")
    out_name, layer, x_name, y_name = step
    if type(layer) not in SYMBOLS:
        raise ValueError(
            f"step {index} ({out_name}): can draw MulLayer and AddLayer nodes, got {type(layer).__name__}"
        )
    if layer.x is None or layer.out is None:
        raise ValueError(f"step {index} ({out_name}): its {type(layer).__name__} has not run forward yet")
    return out_name, layer, x_name, y_name


def _producers(steps: list[Step]) -> dict[str, int]:
    """Output name -> index of the step making it; raises if a name is used before it is made."""
    producer: dict[str, int] = {}
    for index, (out_name, _, *inputs) in enumerate(steps):
        for name in inputs:
            later = [i for i, step in enumerate(steps) if step[0] == name and i >= index]
            if later and name not in producer:
                raise ValueError(f"step {index} ({out_name}) uses {name} before step {later[0]} outputs it")
        if out_name in producer:
            raise ValueError(f"two steps output {out_name}: give each output its own name")
        producer[out_name] = index
    return producer


def _columns(steps: list[Step], producer: dict[str, int]) -> list[int]:
    """Column of each step: 1 + the largest column among the steps feeding it (inputs: 0)."""
    column: list[int] = []
    for _, _, *inputs in steps:
        column.append(1 + max((column[producer[n]] for n in inputs if n in producer), default=0))
    return column


def _rows(steps: list[Step], producer: dict[str, int]) -> dict[str, float]:
    """Row of every name: inputs one per row in depth-first order from the outputs; a node
    midway between the rows of its two inputs."""
    row: dict[str, float] = {}
    consumed = {name for _, _, *inputs in steps for name in inputs}

    def visit(name: str) -> float:
        if name not in row:
            if name in producer:
                _, _, x_name, y_name = steps[producer[name]]
                row[name] = (visit(x_name) + visit(y_name)) / 2
            else:
                row[name] = sum(1 for n in row if n not in producer)
        return row[name]

    for out_name, *_ in steps:
        if out_name not in consumed:
            visit(out_name)
    return row


def _shorten(x0: float, y0: float, x1: float, y1: float, *, start: float, end: float) -> _Arrow:
    """The arrow from (x0, y0) to (x1, y1), cut short by start and end pixels (circle radii)."""
    length = math.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    return _Arrow(x0 + start * ux, y0 + start * uy, x1 - end * ux, y1 - end * uy)


def _ran_backward(layer: Any) -> bool:
    return layer.dout is not None and layer.dx is not None


def _same(a: Any, b: Any) -> bool:
    return a is b or (np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b))))


def _format(value: Any) -> str:
    """A value as the picture shows it: numbers to 6 significant digits, small arrays whole."""
    array = np.asarray(value)
    if array.ndim == 0:
        return f"{array.item():.6g}"
    if array.size <= 4:
        return np.array2string(array, precision=4, separator=", ", suppress_small=True)
    return f"array of shape {array.shape}"


if __name__ == "__main__":
    sys.exit(main())
