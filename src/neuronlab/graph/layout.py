"""Where each node of a graph goes in a left-to-right drawing.

A simple layered layout (the Sugiyama scheme, without its refinements):

1. **Columns.** A node's column is the length of the longest path to it from an input, so
   the inputs are in column 0 on the left, every gate is right of all its inputs, and the
   output, which depends on everything, is alone in the last column.
2. **Bends.** An edge that skips columns (the bias ``w2`` goes straight to the third add
   gate) gets a *bend* in every column it crosses: a small placeholder that is ordered like a
   node, so the edge is routed between the nodes instead of through them.
3. **Rows.** Within each column, nodes and bends are ordered to reduce edge crossings with
   the *barycenter* heuristic: sweeping left to right, sort a column by the mean height of
   each item's neighbours in the column before; sweeping right to left, by the mean height
   of its neighbours in the column after. A few sweeps, keeping the order with the fewest
   crossings seen. The first order seen is the forward order, so sorting never makes the
   drawing worse.

Heights are in row units, centred on 0: a node takes 1 row, a bend a fraction of one.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Union

from neuronlab.graph.value import Value, topological_order

__all__ = ["BEND_HEIGHT", "Edge", "Layout", "layout_graph"]

#: The height of a bend, in rows: enough for an edge to pass between two nodes.
BEND_HEIGHT = 0.3

#: An edge: (input node, gate node, position of the input among the gate's inputs). The
#: position tells apart the two edges of ``x * x``.
Edge = tuple[Value, Value, int]


class _Bend:
    """A point where a long edge crosses a column (a "dummy node" in the literature)."""

    __slots__ = ()


_Item = Union[Value, _Bend]


@dataclass(frozen=True)
class Layout:
    """The nodes in columns, their heights, and the path of every edge.

    Attributes
    ----------
    columns : tuple of tuple of Value
        Left to right, each top to bottom. ``columns[0]`` holds the inputs;
        ``columns[-1]`` is ``(output,)``.
    heights : dict of Value to float
        Each node's height in rows; 0 is the middle of the drawing, negative is higher up.
    routes : dict of Edge to tuple of float
        Each edge's height in every column from its input's to its gate's, both included.
    crossings : int
        Pairs of edge pieces that cross between neighbouring columns.
    """

    columns: tuple[tuple[Value, ...], ...]
    heights: Mapping[Value, float]
    routes: Mapping[Edge, tuple[float, ...]]
    crossings: int

    def column(self, node: Value) -> int:
        """The column index of ``node``."""
        return self._column[node]

    @cached_property
    def _column(self) -> dict[Value, int]:
        return {node: c for c, col in enumerate(self.columns) for node in col}

    @property
    def span(self) -> tuple[float, float]:
        """The lowest and highest height used by a node or an edge."""
        ys = [y for route in self.routes.values() for y in route] + list(self.heights.values())
        return min(ys), max(ys)


def layout_graph(output: Value, *, sweeps: int = 4) -> Layout:
    """Lay out ``output``'s graph: columns by longest path, rows by barycenter sweeps.

    Parameters
    ----------
    output : Value
        The node whose graph to lay out; it gets the last column.
    sweeps : int
        Left-to-right plus right-to-left passes of the barycenter ordering (0: keep the
        forward order).

    Returns
    -------
    Layout
        Columns, heights and edge routes, with the number of crossings left.
    """
    if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 0:
        raise ValueError(f"sweeps must be an int >= 0, got {sweeps!r}")
    order = topological_order(output)
    column: dict[Value, int] = {}
    for node in order:  # topological: a node's inputs already have their column
        column[node] = 1 + max(column[i] for i in node.inputs) if node.inputs else 0

    # Columns of items, and each edge as a chain of items, one per column it touches.
    columns: list[list[_Item]] = [[] for _ in range(column[output] + 1)]
    for node in order:
        columns[column[node]].append(node)
    chains: dict[Edge, list[_Item]] = {}
    before: dict[_Item, list[_Item]] = {node: [] for node in order}  # neighbours on the left
    after: dict[_Item, list[_Item]] = {node: [] for node in order}  # neighbours on the right
    for node in order:
        for k, inp in enumerate(node.inputs):
            bends: list[_Item] = [_Bend() for _ in range(column[inp] + 1, column[node])]
            for c, bend in enumerate(bends, start=column[inp] + 1):
                columns[c].append(bend)
                before[bend], after[bend] = [], []
            chain = [inp, *bends, node]
            for a, b in zip(chain, chain[1:]):
                after[a].append(b)
                before[b].append(a)
            chains[(inp, node, k)] = chain

    best, fewest = [list(col) for col in columns], _crossings(columns, after)
    for _ in range(sweeps):
        if fewest == 0:
            break
        for c in range(1, len(columns)):
            _sort_by_neighbours(columns, c, before)
        for c in range(len(columns) - 2, -1, -1):
            _sort_by_neighbours(columns, c, after)
        crossings = _crossings(columns, after)
        if crossings < fewest:
            best, fewest = [list(col) for col in columns], crossings

    height = _heights(best)
    return Layout(
        columns=tuple(tuple(i for i in col if isinstance(i, Value)) for col in best),
        heights={node: height[node] for node in order},
        routes={edge: tuple(height[i] for i in chain) for edge, chain in chains.items()},
        crossings=fewest,
    )


# -- helpers --------------------------------------------------------------------------------
def _heights(columns: Sequence[Sequence[_Item]]) -> dict[_Item, float]:
    """Each item's height: stacked top to bottom (a node 1 row, a bend BEND_HEIGHT), the
    column centred on 0."""
    out: dict[_Item, float] = {}
    for col in columns:
        sizes = [1.0 if isinstance(item, Value) else BEND_HEIGHT for item in col]
        top = -sum(sizes) / 2
        for item, size in zip(col, sizes):
            out[item] = top + size / 2
            top += size
    return out


def _sort_by_neighbours(columns: list[list[_Item]], c: int,
                        neighbours: Mapping[_Item, Sequence[_Item]]) -> None:
    """Sort column ``c`` by the mean height of each item's neighbours (the barycenter).

    Stable: ties keep their order. An item without neighbours keeps its own height."""
    height = _heights(columns)

    def key(item: _Item) -> float:
        ys = [height[n] for n in neighbours[item]]
        return sum(ys) / len(ys) if ys else height[item]

    columns[c].sort(key=key)


def _crossings(columns: Sequence[Sequence[_Item]],
               after: Mapping[_Item, Sequence[_Item]]) -> int:
    """Pairs of edge pieces a→b and p→q between neighbouring columns that cross: a above p
    and b below q. Pieces that share an end meet there; they do not cross.

    Sorted by their left end, two pieces cross when the later one's right end is strictly
    above the earlier one's: counting those pairs with a sorted list (bisect) takes
    O(n log n) comparisons instead of comparing every pair."""
    height = _heights(columns)
    count = 0
    for col in columns:
        pieces = sorted((height[a], height[b]) for a in col for b in after[a])
        seen: list[float] = []  # right ends of the pieces whose left end is strictly higher
        i = 0
        while i < len(pieces):
            j = i
            while j < len(pieces) and pieces[j][0] == pieces[i][0]:  # one shared left end
                j += 1
            for _, b in pieces[i:j]:
                count += len(seen) - bisect.bisect_right(seen, b)  # earlier ones below b
            for _, b in pieces[i:j]:
                bisect.insort(seen, b)
            i = j
    return count
