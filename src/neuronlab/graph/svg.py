"""Draw a computational graph as a standalone SVG, the way the notes draw their circuits.

Inputs on the left, the output on the right (see :mod:`neuronlab.graph.layout`). Each node
is a box holding its label and its gate (``+``, ``*``, ``exp``, ``1/x``, ...), with its value
in green above and its gradient in red below. With ``step=k`` the drawing shows only what
is known after the first k steps of :func:`~neuronlab.graph.trace.backward_steps`: the values
appear one by one from left to right, then the gradients from right to left. The node of
step k is outlined in orange and the edges it used are coloured, and a caption says what
happened, so drawing ``step=0, 1, 2, ...`` shows backprop happening one gate at a time.

The SVG is plain text written here: no Graphviz, no fonts or files from elsewhere.
"""

from __future__ import annotations

import os
from html import escape

from neuronlab.graph.layout import Edge, Layout, layout_graph
from neuronlab.graph.trace import Step, backward_steps, format_number, node_names
from neuronlab.graph.value import Value, topological_order

__all__ = ["Drawing", "draw", "to_svg"]

# Geometry, in SVG pixels. Text is 12 px monospace, about 7.2 px per character.
CHAR_W = 7.2
BOX_H = 38.0
MIN_BOX_W = 56.0
COL_GAP = 64.0  # between the boxes of neighbouring columns
ROW_H = 90.0  # between the centres of neighbouring rows: box, value above, gradient below
MARGIN = 24.0
NUMBER_GAP = 8.0  # between a box and its value / gradient text
INPUT_SPREAD = 10.0  # vertical gap between the ends of a gate's incoming edges
CAPTION_LINE = 18.0

EDGE_COLOUR = "#757575"
VALUE_COLOUR = "#2e7d32"  # green, as the notes' circuit diagrams
GRAD_COLOUR = "#c62828"  # red
CURRENT_COLOUR = "#ef6c00"  # the node of the step being shown


def to_svg(output: Value, *, step: int | None = None, digits: int = 3) -> str:
    """Draw ``output``'s graph as an SVG document.

    Runs the backward pass first (through :func:`backward_steps`, which sets every node's
    ``grad``), so the gradients drawn are those of ``output``.

    Parameters
    ----------
    output : Value
        The node whose graph to draw.
    step : int, optional
        Show the graph after the first ``step`` steps of ``backward_steps(output)``: 0 draws
        the bare graph, ``len(trace)`` everything. None (the default): everything, with no
        caption.
    digits : int
        Significant digits of the numbers shown.

    Returns
    -------
    str
        A standalone SVG document (UTF-8 text, starting ``<svg``).
    """
    trace = backward_steps(output)
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)
                             or not 0 <= step <= len(trace)):
        raise ValueError(f"step must be an int from 0 to {len(trace)} (the trace's length), "
                         f"got {step!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be an int >= 1, got {digits!r}")
    shown = trace if step is None else trace[:step]
    current = shown[-1] if step is not None and shown else None
    return _Drawing(output, layout_graph(output), shown, current, len(trace), digits).render()


class _Drawing:
    """Geometry and markup of one drawing."""

    def __init__(self, output: Value, lay: Layout, shown: list[Step], current: Step | None,
                 n_steps: int, digits: int) -> None:
        self.output, self.lay, self.current, self.digits = output, lay, current, digits
        order = topological_order(output)
        self.names = node_names(order)  # the trace's names: n<k> is the k-th in forward order
        self.index = {node: k for k, node in enumerate(order, start=1)}
        self.has_value = {s.node for s in shown if s.phase == "forward"}
        self.has_grad = {s.node for s in shown if s.phase == "backward"}
        self.caption: list[str] = []  # lines under the drawing: the step and why
        if current is not None:
            self.caption = [f"step {current.number}/{n_steps}: {current.equation(digits)}",
                            *(f"  {reason}" for reason in current.reasons())]
        elif not shown and n_steps:
            self.caption = [f"step 0/{n_steps}: the graph, before the forward pass"]

        # box widths, column centres, and the y of height 0 (the middle row)
        self.box_w = {node: max(MIN_BOX_W, CHAR_W * max(len(self.names[node]), len(node.op))
                                + 16) for node in order}
        col_w = [max(self.box_w[n] for n in col) for col in lay.columns]
        self.col_x: list[float] = []
        left = MARGIN
        for w in col_w:
            self.col_x.append(left + w / 2)
            left += w + COL_GAP
        low, high = lay.span
        self.top = MARGIN + 16 + NUMBER_GAP + BOX_H / 2 - low * ROW_H  # room for a value
        longest = max((len(line) for line in self.caption), default=0)
        self.width = max(left - COL_GAP + MARGIN, 2 * MARGIN + CHAR_W * longest)
        self.height = self.y(high) + BOX_H / 2 + NUMBER_GAP + 16 + MARGIN
        self.height += CAPTION_LINE * len(self.caption)

    # -- pieces ---------------------------------------------------------------------------
    def y(self, height: float) -> float:
        """The SVG y of a layout height (in rows, 0 in the middle)."""
        return self.top + height * ROW_H

    def centre(self, node: Value) -> tuple[float, float]:
        """The (x, y) of the centre of ``node``'s box."""
        return self.col_x[self.lay.column(node)], self.y(self.lay.heights[node])

    def active_edges(self) -> set[tuple[Value, Value]]:
        """The edges the current step used: a gate's inputs going forward, or the edges its
        gradient came back along going backward."""
        s = self.current
        if s is None:
            return set()
        if s.phase == "forward":
            return {(inp, s.node) for inp in s.node.inputs}
        return {(s.node, c.gate_node) for c in s.contributions}

    def edge(self, edge: Edge, active: str) -> str:
        """An edge as smooth curves through its route: from the right side of the input's
        box, through the gap left for it in each column it crosses, to the gate's box."""
        inp, node, k = edge
        c0 = self.lay.column(inp)
        points = [(self.col_x[c0 + i], self.y(h)) for i, h in enumerate(self.lay.routes[edge])]
        points[0] = (points[0][0] + self.box_w[inp] / 2, points[0][1])
        x_end, y_end = points[-1]
        spread = (k - (len(node.inputs) - 1) / 2) * INPUT_SPREAD  # x * x: two distinct ends
        points[-1] = (x_end - self.box_w[node] / 2 - 2, y_end + spread)  # 2: the arrow head
        d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
        for (xa, ya), (xb, yb) in zip(points, points[1:]):
            xm = (xa + xb) / 2  # leave and arrive horizontally
            d += f" C{xm:.1f},{ya:.1f} {xm:.1f},{yb:.1f} {xb:.1f},{yb:.1f}"
        colour, width = (active, 2.0) if active else (EDGE_COLOUR, 1.2)
        return (f'<path class="edge{" active" if active else ""}" d="{d}" fill="none" '
                f'stroke="{colour}" stroke-width="{width}" '
                f'marker-end="url(#arrow-{colour[1:]})"/>')

    def node(self, node: Value) -> str:
        """A node's group: its box, name, gate, and the value and gradient known so far."""
        cx, cy = self.centre(node)
        w, name, op = self.box_w[node], self.names[node], node.op
        is_current = self.current is not None and self.current.node is node
        fill = "#ffffff" if node.inputs else "#e3f2fd"  # inputs in blue
        stroke, stroke_w = (CURRENT_COLOUR, 3.0) if is_current else ("#424242", 1.2)
        inputs = [self.names[i] for i in node.inputs]
        tip = [f"{name} = {node.formula.format(*inputs)}" if inputs else f"{name} (input)"]

        body = [f'<rect class="box" x="{cx - w / 2:.1f}" y="{cy - BOX_H / 2:.1f}" '
                f'width="{w:.1f}" height="{BOX_H:.1f}" rx="6" fill="{fill}" '
                f'stroke="{stroke}" stroke-width="{stroke_w}"/>']
        # The name: the label in bold, or the trace's n<k> in grey for an unlabelled gate;
        # under it the gate as the notes' circuits write it ("+", "*-1", "1/x").
        if node.label:
            body.append(_text("label", cx, cy - 3 if op else cy + 4, name, weight="bold"))
        else:
            body.append(_text("label auto", cx, cy - 3, name, fill="#9e9e9e"))
        if op:
            body.append(_text("op", cx, cy + 12, op, fill="#616161"))
        if node in self.has_value:  # green, above
            v = format_number(node.data, self.digits)
            body.append(_text("value", cx, cy - BOX_H / 2 - NUMBER_GAP, v, fill=VALUE_COLOUR))
            tip.append(f"value {node.data!r}")
        if node in self.has_grad:  # red, below
            g = format_number(node.grad, self.digits)
            body.append(_text("grad", cx, cy + BOX_H / 2 + NUMBER_GAP + 11, g, fill=GRAD_COLOUR))
            tip.append(f"gradient {node.grad!r}")

        cls = "node current" if is_current else "node"
        return (f'<g class="{cls}" id="node-{self.index[node]}">'
                f"<title>{escape('; '.join(tip))}</title>{''.join(body)}</g>")

    # -- the document ---------------------------------------------------------------------
    def render(self) -> str:
        active = self.active_edges()
        colour = GRAD_COLOUR if self.current and self.current.phase == "backward" else VALUE_COLOUR
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" '
            f'height="{self.height:.0f}" viewBox="0 0 {self.width:.0f} {self.height:.0f}" '
            'font-family="monospace" font-size="12">',
            f"<title>{escape(f'computational graph of {self.names[self.output]}')}</title>",
            "<defs>" + "".join(_arrow_head(c) for c in (EDGE_COLOUR, VALUE_COLOUR, GRAD_COLOUR))
            + "</defs>",
            '<rect width="100%" height="100%" fill="#ffffff"/>',
        ]
        for edge in self.lay.routes:
            out.append(self.edge(edge, colour if edge[:2] in active else ""))
        for col in self.lay.columns:
            out.extend(self.node(node) for node in col)
        first = self.height - MARGIN + 4 - CAPTION_LINE * (len(self.caption) - 1)
        for i, line in enumerate(self.caption):
            out.append(_text("caption", MARGIN, first + i * CAPTION_LINE, line, anchor="start"))
        out.append("</svg>")
        return "\n".join(out) + "\n"


def _arrow_head(colour: str) -> str:
    """An arrow head for edges of ``colour``, referred to as ``url(#arrow-<hex>)``."""
    return (f'<marker id="arrow-{colour[1:]}" viewBox="0 0 8 8" refX="8" refY="4" '
            'markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,0 L8,4 L0,8 z" fill="{colour}"/></marker>')


def _text(cls: str, x: float, y: float, text: str, *, fill: str = "#212121",
          weight: str = "normal", anchor: str = "middle") -> str:
    return (f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}">{escape(text)}</text>')


class Drawing:
    """An SVG drawing that Jupyter (and the docs' tutorial pages) show as a picture.

    Parameters
    ----------
    svg : str
        The SVG document; ``str(drawing)`` gives it back.
    """

    def __init__(self, svg: str) -> None:
        self.svg = svg

    def _repr_svg_(self) -> str:
        """The document, for notebooks: IPython displays an object with this method as SVG."""
        return self.svg

    def __str__(self) -> str:
        return self.svg

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the SVG document to ``path`` (UTF-8).

        Parameters
        ----------
        path : str or os.PathLike
        """
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)


def draw(output: Value, *, step: int | None = None, digits: int = 3) -> Drawing:
    """:func:`to_svg` as a :class:`Drawing`, which a notebook displays as a picture.

    Parameters
    ----------
    output : Value
        The expression's result; its graph is drawn (the backward pass runs first).
    step : int or None
        Show only what is known after this step of :func:`backward_steps`; None shows all.
    digits : int
        Significant digits of the values and gradients.

    Returns
    -------
    Drawing

    Examples
    --------
    >>> from neuronlab.graph import Value, draw
    >>> x, y = Value(2.0, "x"), Value(3.0, "y")
    >>> str(draw((x * y).named("f"))).startswith("<svg")
    True
    """
    return Drawing(to_svg(output, step=step, digits=digits))
