"""The computational-graph nodes of chapter 5: multiply and add.

They work on plain numbers and on arrays alike, so the apple example prints exactly
what the book prints.
"""

from __future__ import annotations

from typing import Any


class MulLayer:
    """out = x * y; backward gives (dout * y, dout * x)."""

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        self.x = x
        self.y = y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        # each input's gradient is the upstream gradient times the *other* input
        dx = dout * self.y
        dy = dout * self.x
        return dx, dy


class AddLayer:
    """out = x + y; backward passes dout to both inputs unchanged."""

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        self.x = x
        self.y = y
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        # "* 1" returns a new object, so the two gradients never alias the caller's dout
        dx = dout * 1
        dy = dout * 1
        return dx, dy
