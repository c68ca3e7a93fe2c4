"""Face-embedding vector search at scale: recall@10 and latency, in-process vs pgvector.

    .venv/bin/python -m bench.vector_search calibrate          # fit the embedding model
    nice -n 10 .venv/bin/python -m bench.vector_search run \\
        [--n 1000000] [--per-identity 25] [--queries 1000] [--ef 32,64,128,256] \\
        [--engines exact,local,pgvector] [--pg-n N] [--filter-n 100000]

Data ("real-looking"): 128-D L2-normalised embeddings from a Gaussian model fitted to real
dlib ResNet face descriptors (``calibrate``: dlib's HOG detector, 5-point alignment and
``dlib_face_recognition_resnet_model_v1`` on the 450 people of ``../shared/data/faces/lfw-a``
with 2 or more images; written to ``bench/face_embedding_model.json``): the global mean,
the between-identity and the within-identity covariance spectra (eigenvalues, on random
orthonormal bases). Identities are drawn from the between model, samples from identity +
within noise, then normalised; identities are interleaved (sample i is identity i mod I),
so any prefix is a valid smaller data set. Queries are fresh samples of existing identities.
Without the model file the generator falls back to isotropic clusters with cosine 0.8 to
the centre. The run prints the same-/different-identity cosine statistics of the synthetic
data next to the real ones.

Ground truth: exact top-10 by cosine (numpy, float32). ``exact`` is single-query numpy
brute force (matrix-vector product + argpartition) -- the baseline. ``local`` is
``citywatch.search.vectors.LocalVectorIndex`` (usearch HNSW above its exact threshold);
``pgvector`` is ``PgVectorIndex`` on an embedded PostgreSQL 18 + pgvector 0.8.6
(``tests.support.postgres``; shared_buffers raised to 2GB with ALTER SYSTEM). Every query
goes through the index's public ``search`` (validation, normalisation, and for pgvector the
pool checkout and round trip). ``--filter-n`` adds the collection-scoping test: a 1,000
vector "watchlist" next to a big collection, searched per partition (ours) and, for
comparison, through one shared HNSW index filtered with WHERE collection = ... with
pgvector's iterative scan off / relaxed_order / strict_order.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, emit, machine, percentile

MODEL_FILE = REPO / "bench" / "face_embedding_model.json"
FACES = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "faces"
DLIB_MODELS = Path(
    os.environ.get("CITYWATCH_MODELS", Path.home() / ".cache" / "citywatch" / "models")
)
DIM = 128
K = 10


# memory and CPU ---------------------------------------------------------------------------
def reset_peak_rss() -> None:
    """Reset VmHWM of this process (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


def rss_mb() -> dict[str, float]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mb": out.get("VmRSS", 0.0), "peak_rss_mb": out.get("VmHWM", 0.0)}


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pg_cpu_s(postmaster: int) -> float:
    """CPU of the server: postmaster incl. reaped children + live children."""
    total = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        if int(pid) == postmaster:
            total += sum(int(x) for x in fields[11:15]) / tck  # utime stime cutime cstime
        elif ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tck
    return total


def pg_rss_mb(postmaster: int) -> float:
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                data = f.read()
            fields = data[data.rindex(")") + 2 :].split()
            if int(pid) != postmaster and int(fields[1]) != postmaster:
                continue
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return round(total / 1024, 1)


# calibration ------------------------------------------------------------------------------
def calibrate(max_people: int) -> dict[str, Any]:
    """dlib descriptors of lfw-a people with >= 2 images -> Gaussian model (spectra)."""
    import dlib

    lfw = FACES / "lfw-a" / "lfw"
    if not lfw.is_dir():
        sys.exit(f"no {lfw}: calibration needs ../shared/data/faces/lfw-a")
    sp = DLIB_MODELS / "shape_predictor_5_face_landmarks.dat"
    rec = DLIB_MODELS / "dlib_face_recognition_resnet_model_v1.dat"
    if not sp.is_file() or not rec.is_file():
        sys.exit(f"no dlib face models in {DLIB_MODELS} (scripts/build_models.sh)")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(sp))
    encoder = dlib.face_recognition_model_v1(str(rec))
    people = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 2)
    people = people[:max_people]
    embs: list[np.ndarray] = []
    labels: list[int] = []
    missed = 0
    t0 = time.perf_counter()
    for label, person in enumerate(people):
        for img_path in sorted(person.iterdir()):
            img = dlib.load_rgb_image(str(img_path))
            dets = detector(img, 1)
            if len(dets) == 0:
                missed += 1
                continue
            # the aligned LFW crop has its subject in the centre: take the most central face
            cx, cy = img.shape[1] / 2, img.shape[0] / 2
            det = min(dets, key=lambda d: (d.center().x - cx) ** 2 + (d.center().y - cy) ** 2)
            desc = np.array(encoder.compute_face_descriptor(img, predictor(img, det)))
            embs.append(desc / np.linalg.norm(desc))
            labels.append(label)
    elapsed = time.perf_counter() - t0
    x = np.array(embs)
    y = np.array(labels)
    keep = np.isin(y, [lab for lab in set(y.tolist()) if (y == lab).sum() >= 2])
    x, y = x[keep], y[keep]
    ids = sorted(set(y.tolist()))
    mu = x.mean(axis=0)
    centres = np.array([x[y == i].mean(axis=0) for i in ids])
    within = np.concatenate([x[y == i] - x[y == i].mean(axis=0) for i in ids])
    dof = len(x) - len(ids)
    cov_w = within.T @ within / dof
    # between: covariance of identity means minus the within part they still carry
    counts = np.array([(y == i).sum() for i in ids])
    cov_c = np.cov(centres.T)
    cov_b = cov_c - cov_w * float(np.mean(1.0 / counts))
    ev_b = np.clip(np.linalg.eigvalsh(cov_b)[::-1], 0.0, None)
    ev_w = np.clip(np.linalg.eigvalsh(cov_w)[::-1], 0.0, None)
    stats = pair_stats(x, y)
    model = {
        "source": "dlib 20.0.1 HOG + shape_predictor_5 + resnet_model_v1 on ../shared/data/"
        "faces/lfw-a (grayscale, aligned), people with >= 2 images, L2-normalised",
        "people": len(ids),
        "images": int(len(x)),
        "missed_detections": missed,
        "seconds": round(elapsed, 1),
        "mean_norm": float(np.linalg.norm(mu)),
        "between_eigenvalues": [round(float(v), 8) for v in ev_b],
        "within_eigenvalues": [round(float(v), 8) for v in ev_w],
        "real_pairs": stats,
    }
    MODEL_FILE.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in model.items() if "eigen" not in k}, indent=1))
    print(f"written to {MODEL_FILE.relative_to(REPO)}")
    return model


def pair_stats(x: np.ndarray, y: np.ndarray, max_pairs: int = 200_000) -> dict[str, float]:
    """Cosine of same-identity and different-identity pairs (a sample), and to centre."""
    rng = np.random.default_rng(1)
    same: list[float] = []
    order = np.argsort(y, kind="stable")
    ys, xs = y[order], x[order]
    starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    ends = np.r_[starts[1:], len(ys)]
    to_centre: list[float] = []
    for s, e in zip(starts, ends, strict=True):
        if e - s < 2:
            continue
        g = xs[s:e]
        sims = g @ g.T
        same.extend(sims[np.triu_indices(e - s, 1)].tolist())
        c = g.mean(axis=0)
        to_centre.extend((g @ (c / np.linalg.norm(c))).tolist())
        if len(same) > max_pairs:
            break
    a = rng.integers(0, len(x), max_pairs)
    b = rng.integers(0, len(x), max_pairs)
    ok = y[a] != y[b]
    diff = np.einsum("ij,ij->i", x[a[ok]], x[b[ok]])
    return {
        "same_mean": round(float(np.mean(same)), 3),
        "same_p05": round(float(np.percentile(same, 5)), 3),
        "diff_mean": round(float(np.mean(diff)), 3),
        "diff_p95": round(float(np.percentile(diff, 95)), 3),
        "diff_p99_9": round(float(np.percentile(diff, 99.9)), 3),
        "to_centre_mean": round(float(np.mean(to_centre)), 3),
    }


# synthetic data ---------------------------------------------------------------------------
class Generator:
    """Identities and samples from the calibrated Gaussian model (or isotropic fallback)."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.model: dict[str, Any] | None = None
        if MODEL_FILE.is_file():
            self.model = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
        d = DIM
        if self.model is not None:
            mu_dir = self.rng.standard_normal(d)
            self.mu = mu_dir / np.linalg.norm(mu_dir) * self.model["mean_norm"]
            self.sb = self._factor(np.array(self.model["between_eigenvalues"]))
            self.sw = self._factor(np.array(self.model["within_eigenvalues"]))
        else:
            self.mu = np.zeros(d)
            self.sb = np.eye(d) / np.sqrt(d)
            self.sw = np.eye(d) * (0.75 / np.sqrt(d))  # cos to centre ~ 1/sqrt(1+0.75^2) = 0.8

    def _factor(self, eigenvalues: np.ndarray) -> np.ndarray:
        q, _ = np.linalg.qr(self.rng.standard_normal((DIM, DIM)))
        out: np.ndarray = (q * np.sqrt(eigenvalues)[None, :]).astype(np.float64)
        return out

    def identities(self, n: int) -> np.ndarray:
        z = self.rng.standard_normal((n, DIM))
        out: np.ndarray = (self.mu + z @ self.sb.T).astype(np.float32)
        return out

    def samples(self, centres: np.ndarray, which: np.ndarray) -> np.ndarray:
        out = np.empty((len(which), DIM), dtype=np.float32)
        step = 200_000
        for s in range(0, len(which), step):
            w = which[s : s + step]
            noise = self.rng.standard_normal((len(w), DIM)) @ self.sw.T
            v = centres[w] + noise.astype(np.float32)
            out[s : s + step] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out


def ground_truth(data: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k row indices by inner product (unit vectors = cosine), in blocks."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 50):
        sims = queries[s : s + 50] @ data.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[s : s + 50] = np.take_along_axis(part, order, axis=1)
    return out


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


@dataclass(frozen=True)
class Truth:
    """Exact top 10 per query, and each query's own person's images in the data."""

    top: np.ndarray
    galleries: list[np.ndarray]

    def scores(self, found: list[list[int]]) -> dict[str, float]:
        """recall@10 vs exact, and same-person recall: the share of the query person's
        images (up to 10) that came back in the 10 -- what face search is for."""
        same = [
            len(set(f) & set(g.tolist())) / min(K, len(g))
            for f, g in zip(found, self.galleries[: len(found)], strict=True)
            if len(g)
        ]
        return {
            "recall_at_10": round(recall(found, self.top[: len(found)]), 4),
            "same_person_recall": round(float(np.mean(same)), 4),
        }


def make_truth(data: np.ndarray, queries: np.ndarray, q_people: np.ndarray, n_ids: int) -> Truth:
    n = len(data)
    galleries = [np.arange(int(p), n, n_ids) for p in q_people]  # interleaved identities
    return Truth(ground_truth(data, queries), galleries)


def timed_queries(
    search: Callable[[np.ndarray], list[int]], queries: np.ndarray
) -> tuple[list[list[int]], dict[str, float]]:
    found: list[list[int]] = []
    lat: list[float] = []
    for q in queries[: min(20, len(queries))]:  # warm-up
        search(q)
    for q in queries:
        t0 = time.perf_counter()
        found.append(search(q))
        lat.append((time.perf_counter() - t0) * 1000)
    return found, {
        "p50_ms": round(percentile(lat, 50), 3),
        "p95_ms": round(percentile(lat, 95), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "mean_ms": round(float(np.mean(lat)), 3),
    }


# engines ----------------------------------------------------------------------------------
def searcher(index: Any, collection: str) -> Callable[[np.ndarray], list[int]]:
    def search(q: np.ndarray) -> list[int]:
        return [h.id for h in index.search(collection, q, K)]

    return search


def bench_exact(data: np.ndarray, queries: np.ndarray, truth: Truth) -> dict[str, Any]:
    def search(q: np.ndarray) -> list[int]:
        sims = data @ q
        top = np.argpartition(-sims, K - 1)[:K]
        return [int(i) for i in top[np.argsort(-sims[top])]]

    n_q = min(len(queries), 200)
    found, lat = timed_queries(search, queries[:n_q])
    return {"n": len(data), "queries": n_q, **truth.scores(found), **lat}


def bench_local(
    data: np.ndarray, queries: np.ndarray, truth: Truth, efs: list[int], work: Path
) -> dict[str, Any]:
    from citywatch.search.vectors import LocalVectorIndex, VectorOptions

    root = work / "vectors"
    ids = np.arange(len(data), dtype=np.int64)
    reset_peak_rss()
    rss0 = rss_mb()["rss_mb"]
    c0, t0 = cpu_s(), time.perf_counter()
    with LocalVectorIndex(root, DIM, VectorOptions()) as index:
        index.add("big", ids, data)
        mode = index.mode("big")
    build_s = time.perf_counter() - t0
    build = {
        "mode": mode,
        "build_wall_s": round(build_s, 1),
        "build_cpu_s": round(cpu_s() - c0, 1),
        "build_peak_rss_mb": rss_mb()["peak_rss_mb"],
        "rss_before_mb": rss0,
        "files_mb": round(sum(p.stat().st_size for p in root.iterdir()) / 2**20, 1),
    }
    print("local build", build, flush=True)
    runs = []
    for ef in efs:
        reset_peak_rss()
        t0 = time.perf_counter()
        index = LocalVectorIndex(root, DIM, VectorOptions(ef_search=ef))
        index.count("big")  # loads the collection
        load_s = time.perf_counter() - t0
        loaded = rss_mb()
        found, lat = timed_queries(searcher(index, "big"), queries)
        index.close()
        runs.append(
            {
                "ef_search": ef,
                **truth.scores(found),
                "load_s": round(load_s, 2),
                "rss_loaded_mb": loaded["rss_mb"],
                **lat,
            }
        )
        print("local", runs[-1], flush=True)
    return {"n": len(data), "queries": len(queries), **build, "runs": runs}


def start_pg(work: Path) -> Any:

    from tests.support.postgres import EmbeddedPostgres

    class BenchPostgres(EmbeddedPostgres):
        """The test server with room for a 1M-vector index: shared_buffers 2GB (the test
        fixture's 128MB is given on the command line, which ALTER SYSTEM cannot override)."""

        def _run(self, exe: str, args: Any) -> Any:
            args = [
                a.replace("shared_buffers=128MB", "shared_buffers=2GB -c max_wal_size=8GB")
                for a in args
            ]
            return super()._run(exe, args)

    pg = BenchPostgres(work / "pg")
    pg.start()
    return pg


def postmaster_pid(pg: Any) -> int:
    return int((Path(pg.data_dir) / "postmaster.pid").read_text().split()[0])


def bench_pg(
    pg: Any, data: np.ndarray, queries: np.ndarray, truth: Truth, efs: list[int]
) -> dict[str, Any]:
    from sqlalchemy import text

    from citywatch.search.vectors import PgVectorIndex, VectorOptions
    from citywatch.store.db import Database

    db = Database(pg.url)
    pm = postmaster_pid(pg)
    ids = np.arange(len(data), dtype=np.int64)
    index = PgVectorIndex(db, DIM, VectorOptions(pg_build_memory="2GB"))
    reset_peak_rss()
    c0, p0, t0 = cpu_s(), pg_cpu_s(pm), time.perf_counter()
    index.add("big", ids, data)
    build_s = time.perf_counter() - t0
    part = index.partition("big")
    with db.engine.connect() as c:
        sizes = c.execute(
            text(
                f"SELECT pg_relation_size('{part}'), pg_indexes_size('{part}'), "
                f"pg_total_relation_size('{part}'), current_setting('shared_buffers'), "
                "current_setting('max_parallel_maintenance_workers')"
            )
        ).one()
        plan = "\n".join(
            r[0]
            for r in c.execute(
                text(
                    f"EXPLAIN SELECT id FROM {part} ORDER BY embedding <=> "
                    f"'{[0.1] * DIM}'::vector LIMIT 10"
                )
            )
        )
    build = {
        "build_wall_s": round(build_s, 1),
        "client_cpu_s": round(cpu_s() - c0, 1),
        "server_cpu_s": round(pg_cpu_s(pm) - p0, 1),
        "client_peak_rss_mb": rss_mb()["peak_rss_mb"],
        "server_pss_mb_after_build": pg_rss_mb(pm),
        "table_mb": round(sizes[0] / 2**20, 1),
        "index_mb": round(sizes[1] / 2**20, 1),
        "total_mb": round(sizes[2] / 2**20, 1),
        "shared_buffers": sizes[3],
        "max_parallel_maintenance_workers": sizes[4],
        "uses_hnsw_index": "hnsw" in plan,
    }
    print("pgvector build", build, flush=True)
    runs = []
    for ef in efs:
        idx = PgVectorIndex(db, DIM, VectorOptions(ef_search=ef))
        found, lat = timed_queries(searcher(idx, "big"), queries)
        runs.append({"ef_search": ef, **truth.scores(found), **lat})
        print("pgvector", runs[-1], flush=True)
    build["server_pss_mb_after_queries"] = pg_rss_mb(pm)
    index.drop("big")
    db.dispose()
    return {"n": len(data), "queries": len(queries), **build, "runs": runs}


def bench_filter(
    pg: Any | None, gen: Generator, n_big: int, efs: list[int], work: Path
) -> dict[str, Any]:
    """A 1,000-vector watchlist beside a big collection: scoped search recall, ours and the
    shared-index-with-WHERE alternative (pgvector iterative scan modes).

    Two query sets: new images of watchlist members, and "passers-by" (new images of people
    who are only in the big collection: the common case of live matching, where the nearest
    vectors of the whole table are all outside the watchlist)."""
    from citywatch.search.vectors import LocalVectorIndex, PgVectorIndex, copy_rows
    from citywatch.store.db import Database

    n_small, n_q = 1000, 200
    n_people = max(n_big // 25, 1)
    centres = gen.identities(n_people + 100)
    big = gen.samples(centres, np.arange(n_big) % n_people)
    # the watchlist: 100 other people x 10 images
    small = gen.samples(centres, n_people + np.arange(n_small) % 100)
    sets = {
        "members": gen.samples(centres, n_people + np.arange(n_q) % 100),
        "passers_by": gen.samples(centres, gen.rng.integers(0, n_people, n_q)),
    }
    truths = {name: ground_truth(small, q) for name, q in sets.items()}  # row = watchlist id
    out: dict[str, Any] = {"n_big": n_big, "n_watchlist": n_small, "queries_per_set": n_q}

    def evaluate(search: Callable[[np.ndarray], list[int]]) -> dict[str, Any]:
        res: dict[str, Any] = {}
        for name, queries in sets.items():
            found, lat = timed_queries(search, queries)
            res[name] = {
                "recall_at_10": round(recall(found, truths[name]), 4),
                "mean_rows_returned": float(np.mean([len(f) for f in found])),
                **lat,
            }
        return res

    with LocalVectorIndex(work / "filter-vectors", DIM) as local:
        local.add("big", np.arange(n_big), big)
        local.add("watchlist", np.arange(n_small), small)
        out["local_per_collection"] = evaluate(searcher(local, "watchlist"))
    print("filter local", out["local_per_collection"], flush=True)
    if pg is None:
        return out
    db = Database(pg.url)
    ours = PgVectorIndex(db, DIM)
    ours.add("big", np.arange(n_big), big)
    ours.add("watchlist", np.arange(n_small), small)
    out["pgvector_per_partition"] = evaluate(searcher(ours, "watchlist"))
    print("filter pg ours", out["pgvector_per_partition"], flush=True)
    ours.drop("big")
    ours.drop("watchlist")

    # the alternative: one table, one HNSW index, WHERE collection = ...
    raw = db.engine.raw_connection()
    conn: Any = raw.driver_connection
    cur = conn.cursor()
    cur.execute(f"CREATE TABLE shared_vec (collection text, id bigint, embedding vector({DIM}))")
    sql = "COPY shared_vec (collection, id, embedding) FROM STDIN (FORMAT BINARY)"
    for name, ids, vecs in (("big", n_big, big), ("watchlist", n_small, small)):
        with cur.copy(sql) as cp:
            for data in copy_rows(name, np.arange(ids, dtype=np.int64), vecs):
                cp.write(data)
    cur.execute("SET maintenance_work_mem = '2GB'")
    cur.execute("CREATE INDEX ON shared_vec USING hnsw (embedding vector_cosine_ops)")
    cur.execute("ANALYZE shared_vec")
    conn.commit()

    def search(q: np.ndarray) -> list[int]:
        lit = "[" + ",".join(f"{x:.9g}" for x in q.tolist()) + "]"
        cur.execute(
            "SELECT id FROM shared_vec WHERE collection = 'watchlist' "
            "ORDER BY embedding <=> %s::vector LIMIT 10",
            (lit,),
        )
        return [int(r[0]) for r in cur.fetchall()]

    shared: dict[str, Any] = {}
    for mode in ("off", "relaxed_order", "strict_order"):
        for ef in efs[:2]:
            cur.execute(f"SET hnsw.iterative_scan = {mode}")
            cur.execute(f"SET hnsw.ef_search = {ef}")
            shared[f"{mode}/ef{ef}"] = evaluate(search)
            print("filter shared", mode, ef, shared[f"{mode}/ef{ef}"], flush=True)
    cur.execute("DROP TABLE shared_vec")
    conn.commit()
    raw.close()
    db.dispose()
    out["pgvector_shared_index_where"] = shared
    return out


# main -------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> None:
    efs = [int(x) for x in args.ef.split(",")]
    engines = set(args.engines.split(","))
    gen = Generator(seed=args.seed)
    n_ids = max(1, args.n // args.per_identity)
    t0 = time.perf_counter()
    centres = gen.identities(n_ids)
    data = gen.samples(centres, np.arange(args.n) % n_ids)
    q_people = gen.rng.integers(0, n_ids, args.queries)
    queries = gen.samples(centres, q_people)
    gen_s = time.perf_counter() - t0
    synth = pair_stats(data[: min(len(data), 200_000)], (np.arange(args.n) % n_ids)[:200_000])
    print("generated", args.n, "in", round(gen_s, 1), "s; synthetic pairs", synth, flush=True)
    t0 = time.perf_counter()
    truth = make_truth(data, queries, q_people, n_ids)
    gt_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "machine": machine(),
        "args": vars(args),
        "data": {
            "n": args.n,
            "identities": n_ids,
            "model": "calibrated (bench/face_embedding_model.json)"
            if gen.model
            else "isotropic fallback",
            "synthetic_pairs": synth,
            "real_pairs": gen.model["real_pairs"] if gen.model else None,
            "ground_truth_s": round(gt_s, 1),
        },
    }
    work = Path(tempfile.mkdtemp(prefix="cw-vbench-", dir=args.work_dir))
    pg = None
    try:
        if "exact" in engines:
            result["exact_numpy"] = bench_exact(data, queries, truth)
            print("exact", result["exact_numpy"], flush=True)
        if "local" in engines:
            result["local_usearch"] = bench_local(data, queries, truth, efs, work)
            shutil.rmtree(work / "vectors", ignore_errors=True)
        if "pgvector" in engines or args.filter_n:
            pg = start_pg(work)
        if "pgvector" in engines and pg is not None:
            n_pg = min(args.pg_n or args.n, args.n)
            truth_pg = (
                truth if n_pg == args.n else make_truth(data[:n_pg], queries, q_people, n_ids)
            )
            result["pgvector"] = bench_pg(pg, data[:n_pg], queries, truth_pg, efs)
        if args.filter_n:
            result["collection_scoping"] = bench_filter(pg, gen, args.filter_n, efs, work)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    emit("vector_search", result, summary(result))


def summary(r: dict[str, Any]) -> list[str]:
    lines = [f"n={r['data']['n']}, load {r['machine']['loadavg']}"]
    if "exact_numpy" in r:
        e = r["exact_numpy"]
        lines.append(
            f"exact numpy: recall@10 {e['recall_at_10']}, same person {e['same_person_recall']}, "
            f"p50 {e['p50_ms']} ms, p95 {e['p95_ms']} ms"
        )
    for key in ("local_usearch", "pgvector"):
        if key in r:
            b = r[key]
            lines.append(f"{key} (n={b['n']}): build {b['build_wall_s']} s")
            for run_ in b["runs"]:
                lines.append(
                    f"  ef {run_['ef_search']}: recall@10 {run_['recall_at_10']}, "
                    f"same person {run_['same_person_recall']}, "
                    f"p50 {run_['p50_ms']} ms, p95 {run_['p95_ms']} ms"
                )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    cal = sub.add_parser("calibrate", help="fit the embedding model on lfw-a with dlib")
    cal.add_argument("--max-people", type=int, default=10_000)
    r = sub.add_parser("run", help="the benchmark")
    r.add_argument("--n", type=int, default=1_000_000)
    r.add_argument("--per-identity", type=int, default=25)
    r.add_argument("--queries", type=int, default=1000)
    r.add_argument("--ef", default="32,64,128,256")
    r.add_argument("--engines", default="exact,local,pgvector")
    r.add_argument("--pg-n", type=int, default=0, help="pgvector on the first N only")
    r.add_argument("--filter-n", type=int, default=100_000)
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--work-dir", default=None, help="where index files go (default: /tmp)")
    args = ap.parse_args()
    if args.cmd == "calibrate":
        calibrate(args.max_people)
    else:
        run(args)


if __name__ == "__main__":
    main()
