"""faces under legal authorisation (authorisations, watchlists, candidates, searches) and
cases that hold evidence past ordinary retention

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "authorisations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("authority_ref", sa.String(length=100), nullable=False),
        sa.Column("objective", sa.Text(), nullable=False),
        sa.Column("case_ref", sa.String(length=100), nullable=False),
        sa.Column("watchlist_ids", sa.JSON(), nullable=False),
        sa.Column("camera_ids", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Float(), nullable=False),
        sa.Column("valid_to", sa.Float(), nullable=False),
        sa.Column("footage_from", sa.Float(), nullable=True),
        sa.Column("footage_to", sa.Float(), nullable=True),
        sa.Column("keep_matches_days", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_at", sa.Float(), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("purged", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_table(
        "face_candidates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authorisation_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=63), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("search_id", sa.Integer(), nullable=True),
        sa.Column("watchlist_id", sa.Integer(), nullable=False),
        sa.Column("watchlist_version", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("crop", sa.String(length=300), nullable=True),
        sa.Column("crop_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviews", sa.JSON(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_face_candidates_authorisation_id"),
        "face_candidates",
        ["authorisation_id"],
        unique=False,
    )
    op.create_index("ix_face_candidates_ts", "face_candidates", ["ts"], unique=False)
    op.create_table(
        "face_searches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authorisation_id", sa.Integer(), nullable=False),
        sa.Column("case_ref", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("probe_image", sa.String(length=300), nullable=True),
        sa.Column("probe_embedding", sa.LargeBinary(), nullable=True),
        sa.Column("probe_sha256", sa.String(length=64), nullable=False),
        sa.Column("camera_ids", sa.JSON(), nullable=False),
        sa.Column("from_ts", sa.Float(), nullable=False),
        sa.Column("to_ts", sa.Float(), nullable=False),
        sa.Column("sample_fps", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("segments_total", sa.Integer(), nullable=False),
        sa.Column("segments_done", sa.Integer(), nullable=False),
        sa.Column("faces_seen", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_face_searches_authorisation_id"),
        "face_searches",
        ["authorisation_id"],
        unique=False,
    )
    op.create_table(
        "face_watchlists",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "case_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "kind", "ref_id"),
    )
    op.create_index(op.f("ix_case_items_case_id"), "case_items", ["case_id"], unique=False)
    op.create_index("ix_case_items_kind_ref", "case_items", ["kind", "ref_id"], unique=False)
    op.create_table(
        "face_appearances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=63), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("crop", sa.String(length=300), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["search_id"], ["face_searches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_face_appearances_search_id"), "face_appearances", ["search_id"], unique=False
    )
    op.create_table(
        "face_persons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("watchlist_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["watchlist_id"], ["face_watchlists.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_face_persons_watchlist_id"), "face_persons", ["watchlist_id"], unique=False
    )
    op.create_table(
        "face_enrolments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("image", sa.String(length=300), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["face_persons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_face_enrolments_person_id"), "face_enrolments", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_face_enrolments_person_id"), table_name="face_enrolments")
    op.drop_table("face_enrolments")
    op.drop_index(op.f("ix_face_persons_watchlist_id"), table_name="face_persons")
    op.drop_table("face_persons")
    op.drop_index(op.f("ix_face_appearances_search_id"), table_name="face_appearances")
    op.drop_table("face_appearances")
    op.drop_index("ix_case_items_kind_ref", table_name="case_items")
    op.drop_index(op.f("ix_case_items_case_id"), table_name="case_items")
    op.drop_table("case_items")
    op.drop_table("face_watchlists")
    op.drop_index(op.f("ix_face_searches_authorisation_id"), table_name="face_searches")
    op.drop_table("face_searches")
    op.drop_index("ix_face_candidates_ts", table_name="face_candidates")
    op.drop_index(op.f("ix_face_candidates_authorisation_id"), table_name="face_candidates")
    op.drop_table("face_candidates")
    op.drop_table("cases")
    op.drop_table("authorisations")
