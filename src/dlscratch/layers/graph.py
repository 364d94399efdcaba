"""The computational-graph nodes of chapter 5: multiply and add.

They work on plain numbers and on arrays alike, so the apple example prints exactly
what the book prints. Each node keeps what its last forward saw and made (x, y, out) and
what its last backward received and returned (dout, dx, dy), so that a run can be drawn
as the book draws it (see dlscratch.graph_picture).
"""

from __future__ import annotations

from typing import Any


class MulLayer:
    """out = x * y; backward gives (dout * y, dout * x)."""

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None
        self.out: Any = None
        self.dout: Any = None
        self.dx: Any = None
        self.dy: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        self.x = x
        self.y = y
        self.out = x * y
        return self.out

    def backward(self, dout: Any) -> tuple[Any, Any]:
        # each input's gradient is the upstream gradient times the *other* input
        self.dout = dout
        self.dx = dout * self.y
        self.dy = dout * self.x
        return self.dx, self.dy


class AddLayer:
    """out = x + y; backward passes dout to both inputs unchanged."""

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None
        self.out: Any = None
        self.dout: Any = None
        self.dx: Any = None
        self.dy: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        self.x = x
        self.y = y
        self.out = x + y
        return self.out

    def backward(self, dout: Any) -> tuple[Any, Any]:
        # "* 1" returns a new object, so the two gradients never alias the caller's dout
        self.dout = dout
        self.dx = dout * 1
        self.dy = dout * 1
        return self.dx, self.dy
