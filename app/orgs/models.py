"""The org tree: county → township (乡镇/街道) → village (村/社区) → grid (网格), plus departments."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, case
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.i18n import N_

LEVELS = ("county", "township", "village", "grid", "department")
LEVEL_LABELS = {"county": N_("县"), "township": N_("乡镇"), "village": N_("村"), "grid": N_("网格"),
                "department": N_("部门")}
LEVEL_FROM_LABEL = {"县": "county", "乡镇": "township", "街道": "township", "村": "village",
                    "社区": "village", "网格": "grid"}
PARENT_LEVEL = {"county": None, "township": "county", "village": "township", "grid": "village",
                "department": ("county", "township")}


class OrgUnit(Base):
    """A unit of the tree, identified by its code (统一代码); departments hang off a county or township.

    ``county_id`` and ``township_id`` are denormalised so jurisdiction filters are one
    indexed equality, not a recursive walk.
    """

    __tablename__ = "org_unit"
    __table_args__ = (
        CheckConstraint("level IN ('county','township','village','grid','department')", name="level"),
        Index("ix_org_unit_parent_level", "parent_id", "level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"))
    county_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"), index=True)
    township_id: Mapped[Optional[int]] = mapped_column(ForeignKey("org_unit.id"), index=True)
    # For departments: the kind (司法所, 派出所, 自然资源所, 住建, 信访办, 人社, 人民法庭, 妇联 …).
    department_kind: Mapped[Optional[str]] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Optional["OrgUnit"]] = relationship(remote_side="OrgUnit.id", foreign_keys=[parent_id])

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS.get(self.level, self.level)

    @hybrid_property
    def county_unit_id(self) -> Optional[int]:
        """The county this unit counts under: itself for a county, else ``county_id`` (the
        report cache's counters are per county; the same rule in SQL below)."""
        return self.id if self.level == "county" else self.county_id

    @county_unit_id.inplace.expression
    @classmethod
    def _county_unit_id_expression(cls):
        return case((cls.level == "county", cls.id), else_=cls.county_id)

    @property
    def village_id(self) -> Optional[int]:
        """The village this unit is or lies in (grids belong to a village)."""
        if self.level == "village":
            return self.id
        if self.level == "grid":
            return self.parent_id
        return None

    def __repr__(self) -> str:  # pragma: no cover
        return f"<OrgUnit {self.code} {self.name}>"
