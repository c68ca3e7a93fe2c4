"""The `citywatch` command: serve, demo, cameras, users, audit, database."""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from citywatch.config import (
    AlertRule,
    AnalyticsConfig,
    CameraConfig,
    ConfigError,
    LineConfig,
    Location,
    Settings,
    StreamConfig,
    load_settings,
    redact_url,
)
from citywatch.governance.accounts import AccountError
from citywatch.governance.audit import AuditRecord
from citywatch.runtime import CityWatch

app = typer.Typer(
    help="CityWatch: open, accountable city video surveillance.", no_args_is_help=True
)
camera_app = typer.Typer(help="Manage cameras.", no_args_is_help=True)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(camera_app, name="camera")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="CITYWATCH_CONFIG", help="YAML configuration file."),
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="CITYWATCH_DATA_DIR", help="Overrides data_dir."),
]


def _settings(config: Path | None, data_dir: Path | None) -> Settings:
    try:
        if config is not None:
            settings = load_settings(config)
        elif Path("citywatch.yaml").exists():
            settings = load_settings(Path("citywatch.yaml"))
        else:
            settings = Settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if data_dir is not None:
        settings.data_dir = data_dir.resolve()
    return settings


def _runtime(config: Path | None, data_dir: Path | None) -> CityWatch:
    cw = CityWatch(_settings(config, data_dir))
    cw.db.upgrade()
    return cw


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# serve / demo ------------------------------------------------------------------------
@app.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    log_level: str = "info",
) -> None:
    """Run the server: record the cameras, serve the API and the web page."""
    import uvicorn

    from citywatch.api.app import create_app

    _logging(log_level)
    settings = _settings(config, data_dir)
    cw = CityWatch(settings)
    uvicorn.run(
        create_app(cw),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=log_level,
        ws="websockets-sansio",
    )


def _demo_videos() -> list[Path]:
    candidates = []
    if env := os.environ.get("CITYWATCH_DEMO_VIDEOS"):
        candidates.append(Path(env))
    candidates += [
        Path.cwd() / "../shared/data/video",
        Path(__file__).resolve().parents[2] / "shared/data/video",
    ]
    for folder in candidates:
        clips = [
            folder / n
            for n in (
                "car-detection.mp4",
                "one-by-one-person-detection.mp4",
                "pets2009-vtest.mp4",
            )
            if (folder / n).is_file()
        ]
        if clips:
            return [c.resolve() for c in clips]
    return []


def _model_ready() -> bool:
    from citywatch.analytics.models import ModelSpecError, load_spec

    try:
        return Path(load_spec("nanodet").path).is_file()
    except ModelSpecError:
        return False


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its data.")] = Path(
        "citywatch-demo"
    ),
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
) -> None:
    """Start a complete CityWatch on embedded defaults with a few demo cameras."""
    import uvicorn

    from citywatch.api.app import create_app
    from citywatch.cameras.testscene import make_scene

    _logging(log_level)
    data_dir = data_dir.resolve()
    analytics = _model_ready()
    if not analytics:
        typer.echo("Detector model not built (scripts/build_models.sh): analytics are off.")
    clips = _demo_videos()
    if not clips:
        typer.echo("No sample footage found (../shared/data/video); generating a test scene.")
        clips = [make_scene(data_dir / "media" / f"scene{i}.mp4", seed=i) for i in (1, 2)]
    cameras = [
        CameraConfig(
            id=f"demo-{i + 1}",
            name=clip.stem.replace("-", " ").title(),
            location=Location(lat=44.8125 + 0.004 * i, lon=20.4612 + 0.006 * i, address="Demo"),
            main_stream=StreamConfig(url=f"file://{clip}"),
            purpose="Demonstration of CityWatch with recorded sample footage",
            legal_basis="Not a real camera: sample footage played as a live stream",
            analytics=AnalyticsConfig(
                enabled=analytics,
                lines=[LineConfig(name="middle", a=(0.0, 0.5), b=(1.0, 0.5))],
            ),
        )
        for i, clip in enumerate(clips)
    ]
    alerts = [AlertRule(name="crossing the middle", on="cross", zone="middle")]
    settings = Settings(data_dir=data_dir, cameras=cameras, alerts=alerts)
    settings.recording.retention.max_age_hours = 24
    cw = CityWatch(settings)
    cw.db.upgrade()
    password = None
    if not any(u.role == "admin" for u in cw.accounts.list_users()):
        password = secrets.token_urlsafe(12)
        cw.accounts.create_user("admin", password, "admin")
        cw.audit.append(AuditRecord(actor=_actor(), action="user.add", target="admin"))
    (data_dir / "citywatch.yaml").write_text(
        yaml.safe_dump(json.loads(settings.model_dump_json()), sort_keys=False)
    )
    typer.echo("")
    typer.echo(
        f"CityWatch demo: http://{host}:{port}/   ({len(cameras)} cameras, data in {data_dir})"
    )
    if password:
        typer.echo(f"  admin login: admin / {password}   (shown once; change it with")
        typer.echo(f"  `citywatch user passwd admin --data-dir {data_dir}`)")
    else:
        typer.echo("  log in with the admin account created on the first run")
    typer.echo(
        "  add your own camera: citywatch camera add ID rtsp://... --name NAME "
        f'--purpose "..." --legal-basis "..." --data-dir {data_dir}'
    )
    typer.echo("")
    uvicorn.run(create_app(cw), host=host, port=port, log_level=log_level, ws="websockets-sansio")


# cameras -------------------------------------------------------------------------------
@camera_app.command("add")
def camera_add(
    camera_id: Annotated[str, typer.Argument(help="Short id: a-z, 0-9, _ and -.")],
    url: Annotated[str, typer.Argument(help="rtsp://, http(s):// MJPEG or file:// URL.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    purpose: Annotated[str, typer.Option(help="Why this camera exists (published).")],
    legal_basis: Annotated[str, typer.Option(help="The law or decision that allows it.")],
    username: str | None = None,
    password_env: Annotated[
        str | None, typer.Option(help="Name of an environment variable holding the password.")
    ] = None,
    address: str = "",
    lat: float | None = None,
    lon: float | None = None,
    disabled: bool = False,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Add or replace a camera. A running server picks it up within seconds."""
    password = os.environ.get(password_env) if password_env else None
    try:
        cfg = CameraConfig(
            id=camera_id,
            name=name,
            location=Location(lat=lat, lon=lon, address=address),
            main_stream=StreamConfig(url=url, username=username, password=password),
            purpose=purpose,
            legal_basis=legal_basis,
            enabled=not disabled,
        )
    except ValueError as exc:
        typer.echo(f"invalid camera: {exc}", err=True)
        raise typer.Exit(2) from None
    cw = _runtime(config, data_dir)
    _, created = cw.cameras.upsert(cfg, source="api", restart=False)
    cw.audit.append(
        AuditRecord(
            actor=_actor(),
            action="camera.add" if created else "camera.update",
            target=camera_id,
            details={"url": cfg.main_stream.safe_url(), "name": name},
        )
    )
    typer.echo(f"camera {camera_id} {'added' if created else 'updated'}")


@camera_app.command("list")
def camera_list(config: ConfigOpt = None, data_dir: DataOpt = None) -> None:
    """List the cameras (passwords are never shown)."""
    cw = _runtime(config, data_dir)
    for row in cw.cameras.all():
        state = "enabled" if row.enabled else "disabled"
        typer.echo(f"{row.id}\t{row.name}\t{state}\t{redact_url(row.main_url)}")


@camera_app.command("remove")
def camera_remove(camera_id: str, config: ConfigOpt = None, data_dir: DataOpt = None) -> None:
    """Remove a camera. Its recordings stay until retention removes them."""
    cw = _runtime(config, data_dir)
    if not cw.cameras.remove(camera_id):
        typer.echo(f"no camera {camera_id!r}", err=True)
        raise typer.Exit(1)
    cw.audit.append(AuditRecord(actor=_actor(), action="camera.remove", target=camera_id))
    typer.echo(f"camera {camera_id} removed")


# users ---------------------------------------------------------------------------------
def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        typer.echo("passwords differ", err=True)
        raise typer.Exit(2)
    return first


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[
        str,
        typer.Option(
            help="admin, operator, investigator, auditor, viewer, authority (approves face "
            "identification), reviewer (confirms face matches)"
        ),
    ],
    cameras: Annotated[
        str | None, typer.Option(help="Comma-separated camera ids this user is limited to.")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Create a user (the first admin is made this way; there is no default password)."""
    cw = _runtime(config, data_dir)
    password = _read_password(password_stdin)
    cam_list = [c.strip() for c in cameras.split(",") if c.strip()] if cameras else None
    try:
        cw.accounts.create_user(username, password, role, cam_list)
    except AccountError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    cw.audit.append(
        AuditRecord(
            actor=_actor(),
            action="user.add",
            target=username,
            details={"role": role, "camera_ids": cam_list},
        )
    )
    typer.echo(f"user {username} ({role}) created")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Set a user's password (ends the user's sessions)."""
    cw = _runtime(config, data_dir)
    try:
        cw.accounts.set_password(username, _read_password(password_stdin))
    except AccountError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    cw.audit.append(AuditRecord(actor=_actor(), action="user.passwd", target=username))
    typer.echo(f"password of {username} changed")


@user_app.command("list")
def user_list(config: ConfigOpt = None, data_dir: DataOpt = None) -> None:
    """List users, roles and camera limits."""
    cw = _runtime(config, data_dir)
    for u in cw.accounts.list_users():
        cams = ",".join(u.camera_ids) if u.camera_ids is not None else "*"
        flag = " (disabled)" if u.disabled else ""
        typer.echo(f"{u.username}\t{u.role}\t{cams}{flag}")


# audit / db ----------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(config: ConfigOpt = None, data_dir: DataOpt = None) -> None:
    """Check the whole hash chain; name the first entry altered, removed or inserted."""
    cw = _runtime(config, data_dir)
    result = cw.audit.verify()
    if result.ok:
        typer.echo(f"audit log OK: {result.entries} entries, head {result.head_hash}")
        cw.audit.append(
            AuditRecord(actor=_actor(), action="audit.verify", details={"entries": result.entries})
        )
        return
    typer.echo(f"audit log BROKEN at entry {result.first_bad_seq}: {result.problem}", err=True)
    raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, data_dir: DataOpt = None) -> None:
    """Create or migrate the database schema to the newest version."""
    cw = CityWatch(_settings(config, data_dir))
    cw.db.upgrade()
    typer.echo(f"database at the newest schema ({cw.db.engine.dialect.name})")


# detection -----------------------------------------------------------------------------
@app.command()
def detect(
    sources: Annotated[list[Path], typer.Argument(help="Images (jpg, png) or video files.")],
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per image or frame.")
    ] = False,
    model: Annotated[
        str, typer.Option(help="Built-in model (nanodet), a model spec .yaml or an .onnx.")
    ] = "nanodet",
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Minimum confidence, every class.")
    ] = None,
    every: Annotated[int, typer.Option(min=1, help="Videos: analyse every Nth frame.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="Inference threads.")] = 1,
) -> None:
    """Detect people and vehicles in images or videos (person, bicycle, car, motorcycle,
    bus, truck), e.g. `citywatch detect street.jpg clip.mp4 --json --every 5`."""
    import av

    from citywatch.analytics.detector import DEFAULT_THRESHOLD, Detector, DetectorError
    from citywatch.analytics.models import ModelSpecError, load_spec

    try:
        detector = Detector(
            load_spec(model),
            threads=threads,
            threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        )
    except (DetectorError, ModelSpecError) as exc:
        typer.echo(f"citywatch detect: {exc}", err=True)
        raise typer.Exit(2) from None
    failed = 0
    for source in sources:
        try:
            with av.open(str(source)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for index, frame in enumerate(container.decode(stream)):
                    if index % every:
                        continue
                    found = detector.detect_frame(frame)
                    ms = round(detector.last_timing.total_ms, 1)
                    if json_lines:
                        item = {
                            "source": str(source),
                            "frame": index,
                            "detections": [
                                {
                                    "class": d.class_name,
                                    "confidence": d.confidence,
                                    "box": list(d.box),
                                }  # fmt: skip
                                for d in found
                            ],
                            "ms": ms,
                        }
                        typer.echo(json.dumps(item))
                    else:
                        what = ", ".join(
                            f"{d.class_name} {d.confidence:.2f} "
                            f"[{d.box[0]:.0f},{d.box[1]:.0f},{d.box[2]:.0f},{d.box[3]:.0f}]"
                            for d in found
                        )
                        typer.echo(f"{source} frame {index}: {what or 'nothing'} ({ms} ms)")
        except (av.error.FFmpegError, IndexError, OSError) as exc:
            failed += 1
            reason = "no video stream" if isinstance(exc, IndexError) else str(exc)
            typer.echo(f"citywatch detect: {source}: cannot read: {reason}", err=True)
    if failed:
        raise typer.Exit(1)


plates_app = typer.Typer(help="Licence plates.", no_args_is_help=True)
app.add_typer(plates_app, name="plates")


@plates_app.command("read")
def plates_read(
    images: Annotated[list[Path], typer.Argument(help="Image files (jpg, png, ...).")],
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per image.")
    ] = False,
    country: Annotated[
        list[str] | None,
        typer.Option(help="Plate formats to apply (RS, ES, EU, US, ...); repeatable. Default all."),
    ] = None,
    min_confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Leave out reads below this confidence.")
    ] = 0.0,
    threads: Annotated[int, typer.Option(min=1, help="Inference threads.")] = 1,
) -> None:
    """Find and read the licence plates in images, e.g.
    `citywatch plates read car.jpg --json --country RS`."""
    import time

    from citywatch.analytics.plates import PlateReader, PlateReaderError, load_image

    try:
        reader = PlateReader(country, threads=threads, min_confidence=min_confidence)
    except (PlateReaderError, ValueError) as exc:
        typer.echo(f"citywatch plates read: {exc}", err=True)
        raise typer.Exit(2) from None
    failed = 0
    for source in images:
        try:
            image = load_image(source)
        except OSError as exc:
            failed += 1
            typer.echo(f"citywatch plates read: {exc}", err=True)
            continue
        t0 = time.perf_counter()
        reads = reader.read(image)
        ms = round((time.perf_counter() - t0) * 1e3, 1)
        if json_lines:
            item = {
                "source": str(source),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "plates": [r.as_dict() for r in reads],
                "ms": ms,
            }
            typer.echo(json.dumps(item))
        else:
            what = ", ".join(
                f"{r.text} ({r.format}, {r.confidence:.2f}) "
                f"[{r.box[0]:.0f},{r.box[1]:.0f},{r.box[2]:.0f},{r.box[3]:.0f}]"
                for r in reads
            )
            typer.echo(f"{source}: {what or 'no plate'} ({ms} ms)")
    if failed:
        raise typer.Exit(1)


faces_app = typer.Typer(help="Faces (image files only).", no_args_is_help=True)
app.add_typer(faces_app, name="faces")


@faces_app.command("compare")
def faces_compare(
    image_a: Annotated[Path, typer.Argument(help="First image file (jpg, png, ...).")],
    image_b: Annotated[Path, typer.Argument(help="Second image file.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=-1.0, max=1.0, help="Similarity for 'same person' (default: the engine's)."
        ),
    ] = None,
    detector: Annotated[str, typer.Option(help="Face detector: hog or blazeface.")] = "hog",
    min_size: Annotated[
        int, typer.Option(min=8, help="Smallest face looked for (box height, px).")
    ] = 40,
) -> None:
    """Find the faces in two images and say how alike the most alike pair is, e.g.
    `citywatch faces compare a.jpg b.jpg --json`. Works on image files only (no camera, no
    stored data). Exit 0: compared; 1: no face in an image; 2: bad input."""
    import time

    from citywatch.analytics.faces import FaceEngine, FaceEngineError, ImageError, load_image
    from citywatch.analytics.faces import similarity as face_similarity

    images = []
    for source in (image_a, image_b):
        try:
            images.append(load_image(source))
        except ImageError as exc:
            typer.echo(f"citywatch faces compare: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        engine = FaceEngine(detector=detector, min_size=min_size)
    except (FaceEngineError, ValueError) as exc:
        typer.echo(f"citywatch faces compare: {exc}", err=True)
        raise typer.Exit(2) from None
    if threshold is not None:
        engine.threshold = threshold
    found = []
    per_image = []
    for source, image in zip((image_a, image_b), images, strict=True):
        t0 = time.perf_counter()
        faces = engine.faces(image)
        ms = round((time.perf_counter() - t0) * 1e3, 1)
        found.append(faces)
        per_image.append(
            {
                "source": str(source),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "faces": [f.as_dict() for f in faces],
                "ms": ms,
            }
        )
    best: tuple[float, int, int] | None = None  # similarity, face in a, face in b
    for i, fa in enumerate(found[0]):
        for j, fb in enumerate(found[1]):
            sim = face_similarity(fa.embedding, fb.embedding)
            if best is None or sim > best[0]:
                best = (sim, i, j)
    same = None if best is None else best[0] >= engine.threshold
    if json_out:
        pair = None if best is None else {"a": best[1], "b": best[2], "similarity": best[0]}
        result = {
            "images": per_image,
            "best": pair,
            "threshold": engine.threshold,
            "same_person": same,
            "detector": engine.detector_name,
        }
        typer.echo(json.dumps(result))
    else:
        for source, faces, item in zip((image_a, image_b), found, per_image, strict=True):
            typer.echo(f"{source}: {len(faces)} face(s) ({item['ms']} ms)")
            for n, face in enumerate(faces, 1):
                q, b = face.quality, face.box
                fit = "; ".join(q.problems) or "fit for enrolment"
                typer.echo(
                    f"  face {n}: [{b.x1:.0f},{b.y1:.0f},{b.x2:.0f},{b.y2:.0f}] {q.size:.0f} px,"
                    f" quality {q.score:.2f} (sharpness {q.sharpness:.0f}, frontal "
                    f"{q.frontal:.2f}): {fit}"
                )
        if best is not None:
            verdict = "same person" if same else "different people"
            typer.echo(
                f"similarity {best[0]:.3f} (face {best[1] + 1} of {image_a.name}, face "
                f"{best[2] + 1} of {image_b.name}): {verdict} at threshold {engine.threshold:.3f}"
            )
    if best is None:
        missing = [str(s) for s, f in zip((image_a, image_b), found, strict=True) if not f]
        typer.echo(f"citywatch faces compare: no face found in {', '.join(missing)}", err=True)
        raise typer.Exit(1)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@faces_app.command("import")
def faces_import(
    folder: Annotated[
        Path,
        typer.Argument(
            help="One sub-folder per person (its name is the person's label) holding that "
            "person's photos; or photos named after the person, directly in the folder."
        ),
    ],
    watchlist: Annotated[str, typer.Option(help="Watchlist name (created if missing).")],
    source: Annotated[str, typer.Option(help="Where every image comes from (required).")],
    legal_basis: Annotated[str, typer.Option(help="Why they may be enrolled (required).")],
    config: ConfigOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Enrol a folder of face photos into a watchlist, with their provenance. Every image is
    checked like an upload (one clear face, large enough, sharp enough) and every refusal is
    printed with its reason; without a source and a legal basis nothing is imported.
    Exit 0: all enrolled; 1: some refused; 2: bad input."""
    from citywatch.events.faces import FaceError

    if len(source.strip()) < 3 or len(legal_basis.strip()) < 3:
        typer.echo("citywatch faces import: --source and --legal-basis are required", err=True)
        raise typer.Exit(2)
    if not folder.is_dir():
        typer.echo(f"citywatch faces import: {folder} is not a folder", err=True)
        raise typer.Exit(2)
    people: dict[str, list[Path]] = {}
    for item in sorted(folder.iterdir()):
        if item.is_dir():
            photos = [p for p in sorted(item.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            if photos:
                people.setdefault(item.name, []).extend(photos)
        elif item.suffix.lower() in IMAGE_SUFFIXES:
            people.setdefault(item.stem, []).append(item)
    if not people:
        typer.echo(f"citywatch faces import: no images in {folder}", err=True)
        raise typer.Exit(2)
    cw = _runtime(config, data_dir)
    actor = _actor()
    try:
        wl = next((w for w in cw.watchlists.all() if w.name == watchlist), None)
        if wl is None:
            wl = cw.watchlists.create(actor, watchlist, legal_basis)
        refused = 0
        known = {p["label"]: p["id"] for p in cw.watchlists.get(wl.id)["persons"]}
        for label, photos in people.items():
            person_id = known.get(label) or cw.watchlists.add_person(actor, wl.id, label).id
            for photo in photos:
                try:
                    cw.watchlists.enrol(actor, person_id, photo.read_bytes(), source, legal_basis)
                    typer.echo(f"{photo}: enrolled as {label}")
                except FaceError as exc:
                    refused += 1
                    typer.echo(f"{photo}: refused: {exc}")
    except FaceError as exc:
        typer.echo(f"citywatch faces import: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        cw.db.dispose()
    if refused:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
