"""Use cases as plain functions: each takes its dependencies keyword-only and runs in one unit of work."""

from pathway.services.audit import AuditReport, verify_audit
from pathway.services.cases import change_case, execute, get_case, newest_and_reference, now, open_case
from pathway.services.children import open_child_pathway
from pathway.services.migration import MigrationSummary, migrate_cases
from pathway.services.people import (
    find_cases_by_name,
    read_person,
    rewrap_case_keys,
    rotate_person_keys,
    update_person,
)
from pathway.services.tasks import answer_task
from pathway.services.users import add_user

__all__ = [
    "AuditReport", "MigrationSummary", "add_user", "answer_task", "change_case", "execute", "find_cases_by_name",
    "get_case", "migrate_cases", "newest_and_reference", "now", "open_case", "open_child_pathway", "read_person",
    "rewrap_case_keys", "rotate_person_keys",
    "update_person", "verify_audit",
]
