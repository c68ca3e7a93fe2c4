"""Rewrite an ONNX model in a canonical form, so that converting the same weights twice
gives the same bytes (and a fixed sha256).

tf2onnx's output is not byte-reproducible: node order and generated names change from run
to run. Here every node and intermediate tensor is renamed after a hash of what computes it
(op, attributes, inputs, recursively; initialisers by content), nodes are written in a
topological order broken by those hashes, and initialisers are sorted by name. Graph
inputs and outputs keep their names; the computation is unchanged.

    python canonical.py model.onnx            # rewrites the file in place
"""

from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def canonicalise(model: Any) -> Any:
    import onnx

    graph = model.graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise SystemExit("canonical.py: subgraphs are not supported")
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    inits = {t.name: t for t in graph.initializer}
    producer = {out: (n, i) for n in graph.node for i, out in enumerate(n.output)}
    memo: dict[str, str] = {}

    def digest(*parts: bytes | str) -> str:
        h = hashlib.sha256()
        for p in parts:
            h.update(p.encode() if isinstance(p, str) else p)
            h.update(b"\0")
        return h.hexdigest()

    def node_hash(node: Any) -> str:
        attrs = [a.SerializeToString(deterministic=True) for a in node.attribute]
        ins = [tensor_hash(i) for i in node.input]
        return digest(node.domain, node.op_type, *attrs, "|", *ins)

    def tensor_hash(name: str) -> str:
        if name == "":
            return "-"
        if name in memo:
            return memo[name]
        if name in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[name])
            t.name = ""
            value = digest("init", t.SerializeToString(deterministic=True))
        elif name in producer:
            node, index = producer[name]
            value = digest("out", node_hash(node), str(index))
        else:  # a graph input
            value = digest("input", name)
        memo[name] = value
        return value

    sys.setrecursionlimit(max(10000, 4 * len(graph.node)))
    hashes = {id(n): node_hash(n) for n in graph.node}

    # New names: graph inputs/outputs keep theirs, the rest are named by hash.
    rename: dict[str, str] = {}
    used: set[str] = set(keep)
    for name in sorted(set(inits) | set(producer), key=tensor_hash):
        if name in keep:
            continue
        base = f"t_{tensor_hash(name)[:16]}"
        new, k = base, 1
        while new in used:
            new, k = f"{base}_{k}", k + 1
        used.add(new)
        rename[name] = new

    # Topological order, ties broken by node hash.
    consumers: dict[str, list[Any]] = defaultdict(list)
    pending: dict[int, int] = {}
    for n in graph.node:
        deps = {i for i in n.input if i in producer}
        pending[id(n)] = len(deps)
        for d in deps:
            consumers[d].append(n)
    ready = sorted((n for n in graph.node if pending[id(n)] == 0), key=lambda n: hashes[id(n)])
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        fresh = []
        for out in n.output:
            for c in consumers.get(out, []):
                pending[id(c)] -= 1
                if pending[id(c)] == 0:
                    fresh.append(c)
        ready = sorted(ready + fresh, key=lambda m: hashes[id(m)])
    if len(order) != len(graph.node):
        raise SystemExit("canonical.py: the graph has a cycle")

    nodes = []
    seen_names: set[str] = set()
    for n in order:
        new = onnx.NodeProto()
        new.CopyFrom(n)
        new.input[:] = [rename.get(i, i) for i in n.input]
        new.output[:] = [rename.get(o, o) for o in n.output]
        name, k = f"n_{hashes[id(n)][:16]}", 1
        while name in seen_names:
            name, k = f"n_{hashes[id(n)][:16]}_{k}", k + 1
        seen_names.add(name)
        new.name = name
        new.doc_string = ""
        nodes.append(new)
    new_inits = []
    for t in graph.initializer:
        c = onnx.TensorProto()
        c.CopyFrom(t)
        c.name = rename.get(t.name, t.name)
        new_inits.append(c)
    new_inits.sort(key=lambda t: t.name)

    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    del graph.value_info[:]  # shape hints with the old names; ONNX Runtime infers them
    for v in graph.input:
        v.doc_string = ""
    model.doc_string = ""
    return model


def main() -> int:
    import onnx

    path = Path(sys.argv[1])
    model = canonicalise(onnx.load(str(path)))
    onnx.checker.check_model(model)
    tmp = path.with_suffix(".canonical.tmp")
    tmp.write_bytes(model.SerializeToString(deterministic=True))
    tmp.replace(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
