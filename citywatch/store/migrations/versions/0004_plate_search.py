"""plate search at scale: trigram index of the plate vocabulary (replaces the bigrams of the
canonical form), a deletion-variant index for fuzzy search, and on PostgreSQL the reads'
(normalised, ts) index covering id, camera and direction

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Callable, Iterable, Iterator

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

BATCH = 50_000
# The OCR-confusion fold of citywatch.search.text.canon, fixed here as it was at 0004.
_CANON = str.maketrans("OIBSZG", "018526")

texts = sa.table("plate_texts", sa.column("id", sa.Integer), sa.column("normalised", sa.String))


def _trigrams(normalised: str) -> set[str]:
    s = f"^{normalised}$"
    return {s[i : i + 3] for i in range(len(s) - 2)}


def _variants(normalised: str) -> set[str]:
    c = normalised.translate(_CANON)
    return {c} | {c[:i] + c[i + 1 :] for i in range(len(c))}


def _canon_bigrams(normalised: str) -> set[str]:
    s = f"^{normalised.translate(_CANON)}$"
    return {s[i : i + 2] for i in range(len(s) - 1)}


def _rows(
    conn: sa.Connection, key: str, keys: Callable[[str], Iterable[str]]
) -> Iterator[list[dict[str, object]]]:
    batch: list[dict[str, object]] = []
    for text_id, norm in conn.execute(sa.select(texts.c.id, texts.c.normalised)).all():
        batch.extend({key: k, "text_id": text_id} for k in keys(norm))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def upgrade() -> None:
    op.drop_table("plate_grams")
    op.create_table(
        "plate_grams",
        sa.Column("gram", sa.String(length=4), nullable=False),
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gram", "text_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "plate_variants",
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("variant", "text_id"),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    grams = sa.table("plate_grams", sa.column("gram"), sa.column("text_id"))
    variants = sa.table("plate_variants", sa.column("variant"), sa.column("text_id"))
    for batch in _rows(conn, "gram", _trigrams):
        conn.execute(grams.insert(), batch)
    for batch in _rows(conn, "variant", _variants):
        conn.execute(variants.insert(), batch)
    if conn.dialect.name == "postgresql":
        op.drop_index("ix_plate_reads_normalised_ts", table_name="plate_reads")
        op.create_index(
            "ix_plate_reads_normalised_ts",
            "plate_reads",
            ["normalised", "ts"],
            postgresql_include=["id", "camera_id", "direction"],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_plate_reads_normalised_ts", table_name="plate_reads")
        op.create_index("ix_plate_reads_normalised_ts", "plate_reads", ["normalised", "ts"])
    op.drop_table("plate_variants")
    op.drop_table("plate_grams")
    op.create_table(
        "plate_grams",
        sa.Column("gram", sa.String(length=4), nullable=False),
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["text_id"], ["plate_texts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("gram", "text_id"),
    )
    conn = op.get_bind()
    grams = sa.table("plate_grams", sa.column("gram"), sa.column("text_id"))
    for batch in _rows(conn, "gram", _canon_bigrams):
        conn.execute(grams.insert(), batch)
