"""The computational-graph picture: drawn from the layers that ran, checked against them."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dlscratch import AddLayer, MulLayer, Relu
from dlscratch.graph_picture import (
    BACKWARD_COLOR,
    ComputationalGraph,
    apple_example,
    apple_orange_example,
    main,
)

SVG = "{http://www.w3.org/2000/svg}"
DOCS_PICTURE = Path(__file__).resolve().parents[1] / "docs" / "images" / "apple-orange.svg"


def _texts(svg: str) -> list[tuple[str, float, float, str]]:
    """(text, x, y, colour) of every text element."""
    root = ET.fromstring(svg)
    return [
        (element.text or "", float(element.get("x")), float(element.get("y")), element.get("fill", ""))
        for element in root.iter(f"{SVG}text")
    ]


def _values(svg: str, backward: bool) -> list[str]:
    return sorted(text for text, _, _, colour in _texts(svg) if (colour == BACKWARD_COLOR) == backward)


def test_apple_orange_is_drawn_as_the_book_draws_it():
    svg = ComputationalGraph(apple_orange_example()).to_svg()
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert len(list(root.iter(f"{SVG}circle"))) == 4
    assert len(list(root.iter(f"{SVG}line"))) == 9  # 5 inputs, 3 inner edges, 1 output
    texts = [text for text, *_ in _texts(svg)]
    times = "\u00d7"  # the multiplication sign
    assert sorted(t for t in texts if t in (times, "+")) == ["+", times, times, times]
    for name in ("apple", "apple_num", "orange", "orange_num", "tax", "price"):
        assert name in texts
    # the book's figure 5-17: forward values above the edges, backward values below
    forward = ["100", "2", "150", "3", "1.1", "200", "450", "650", "715"]
    backward = ["2.2", "110", "3.3", "165", "650", "1.1", "1.1", "1.1", "1"]
    assert set(forward) <= set(texts)
    assert _values(svg, backward=True) == sorted(backward)


def test_each_backward_value_sits_below_its_forward_value():
    texts = _texts(ComputationalGraph(apple_orange_example()).to_svg())
    forward = {(x, y) for _, x, y, colour in texts if colour != BACKWARD_COLOR}
    backward = [(x, y) for _, x, y, colour in texts if colour == BACKWARD_COLOR]
    assert len(backward) == 9
    for x, y in backward:
        assert (x, round(y - 24, 1)) in forward, (x, y)


def test_a_graph_without_backward_shows_forward_values_only():
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    mul_tax_layer.forward(mul_apple_layer.forward(100, 2), 1.1)
    graph = ComputationalGraph(
        [
            ("apple_price", mul_apple_layer, "apple", "apple_num"),
            ("price", mul_tax_layer, "apple_price", "tax"),
        ]
    )
    svg = graph.to_svg()
    assert _values(svg, backward=True) == []
    assert {"100", "2", "200", "1.1", "220"} <= {text for text, *_ in _texts(svg)}
    assert graph.inputs == ["apple", "apple_num", "tax"]


def test_arrays_flow_through_the_picture_too():
    mul = MulLayer()
    mul.forward(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    mul.backward(np.ones(2))
    texts = {text for text, *_ in _texts(ComputationalGraph([("z", mul, "x", "y")]).to_svg())}
    assert {"[1., 2.]", "[3., 4.]", "[3., 8.]", "[1., 1.]"} <= texts


def test_a_branch_adds_the_gradients_of_its_consumers():
    """x = 3 * 3 feeds two nodes, y = x + 1 and out = x * y: d out / dx = y + x = 19."""
    square, add, scale = MulLayer(), AddLayer(), MulLayer()
    x = square.forward(3.0, 3.0)
    y = add.forward(x, 1.0)
    scale.forward(x, y)
    dx_scale, dy = scale.backward(1.0)
    dx_add, _ = add.backward(dy)
    square.backward(dx_scale + dx_add)
    steps = [("x", square, "a", "b"), ("y", add, "x", "one"), ("out", scale, "x", "y")]
    assert len(ET.fromstring(ComputationalGraph(steps).to_svg()).findall(f"{SVG}circle")) == 3

    square.backward(dx_scale)  # forgot the branch's other gradient
    with pytest.raises(ValueError, match=r"received dout 10 in its backward, but .* returned 19"):
        ComputationalGraph(steps)


def test_wiring_that_did_not_run_is_refused():
    steps = apple_orange_example()
    swapped = [steps[0], steps[1], ("all_price", steps[2][1], "orange_price", "apple_price"), steps[3]]
    with pytest.raises(ValueError, match="orange_price = 450, but its AddLayer received 200"):
        ComputationalGraph(swapped)
    with pytest.raises(ValueError, match="uses all_price before step 3 outputs it"):
        ComputationalGraph([steps[0], steps[1], steps[3], steps[2]])
    with pytest.raises(ValueError, match="two steps output apple_price"):
        ComputationalGraph([steps[0], ("apple_price", steps[1][1], "orange", "orange_num")])


def test_what_cannot_be_drawn_is_refused():
    with pytest.raises(ValueError, match="has not run forward"):
        ComputationalGraph([("z", MulLayer(), "x", "y")])
    with pytest.raises(ValueError, match="can draw MulLayer and AddLayer nodes, got Relu"):
        ComputationalGraph([("z", Relu(), "x", "y")])
    with pytest.raises(ValueError, match="output name, layer, x name, y name"):
        ComputationalGraph([("z", MulLayer())])
    with pytest.raises(ValueError, match="at least one step"):
        ComputationalGraph([])


def test_save_writes_svg_and_png(tmp_path):
    graph = ComputationalGraph(apple_example(), title="buying apples")
    svg = graph.save(tmp_path / "apple.svg")
    png = graph.save(tmp_path / "apple.png")
    assert ET.fromstring(svg.read_text(encoding="utf-8")).tag == f"{SVG}svg"
    assert "buying apples" in svg.read_text(encoding="utf-8")
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"use \.svg or \.png"):
        graph.save(tmp_path / "apple.txt")


def test_the_matplotlib_figure_draws_the_same_picture():
    graph = ComputationalGraph(apple_orange_example())
    figure = graph.to_figure()
    (axes,) = figure.axes
    assert len(axes.patches) == 4  # the nodes
    assert len(axes.texts) == len(_texts(graph.to_svg())) + 9  # + the 9 arrows, drawn as empty annotations
    shown = {text.get_text() for text in axes.texts}
    assert {"715", "650", "2.2", "apple", "price"} <= shown


def test_notebooks_show_the_svg():
    graph = ComputationalGraph(apple_example())
    assert graph._repr_svg_() == graph.to_svg()
    assert repr(graph) == (
        "ComputationalGraph(apple_price=MulLayer(apple, apple_num), price=MulLayer(apple_price, tax))"
    )


def test_main_writes_or_prints_the_examples(tmp_path, capsys):
    assert main(["--example", "apple", "--out", str(tmp_path / "apple.png")]) == 0
    assert (tmp_path / "apple.png").stat().st_size > 1000
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("<svg") and "715" in printed and "the apple-orange example" in printed
    assert main(["--out", str(tmp_path / "graph.gif")]) == 2
    assert capsys.readouterr().err.startswith("dlscratch: cannot write a graph picture as .gif")


def test_the_picture_in_the_docs_is_what_the_code_draws():
    """Regenerate with: python -m dlscratch.graph_picture --out docs/images/apple-orange.svg"""
    graph = ComputationalGraph(apple_orange_example(), title="the apple-orange example of chapter 5")
    assert DOCS_PICTURE.read_text(encoding="utf-8") == graph.to_svg()


def test_a_failed_svg_write_leaves_the_old_picture_whole(tmp_path, monkeypatch):
    """The SVG goes through a temporary file and a rename, like every other write: a full
    disk leaves the old picture as it was, not a truncated one."""
    path = tmp_path / "graph.svg"
    path.write_text("<svg>old</svg>")

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        ComputationalGraph(apple_orange_example()).save(path)
    assert path.read_text() == "<svg>old</svg>"
    assert os.listdir(tmp_path) == ["graph.svg"]
