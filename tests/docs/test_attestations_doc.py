"""docs/attestations.md describes every predicate of the catalogue, and the independent verifier stays independent."""

import ast
from pathlib import Path

from vault.attestations.predicates import CATALOGUE
from vault.ledger.events import KINDS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "attestations.md").read_text(encoding="utf-8")


def test_every_predicate_has_its_section_and_nothing_else_is_described():
    described = {line[len("### `") : -1] for line in DOC.splitlines() if line.startswith("### `")}
    assert described == set(CATALOGUE)


def test_the_sections_the_design_names_are_there():
    headings = {line[3:] for line in DOC.splitlines() if line.startswith("## ")}
    assert {"Attestations", "The credential", "Predicates", "Verifying", "Threat model"} <= headings


def test_every_attestation_event_kind_is_documented():
    consent = (ROOT / "docs" / "consent.md").read_text(encoding="utf-8")
    for kind in (k for k in KINDS if k.startswith("attestation.")):
        assert f"| `{kind}` |" in consent, kind


def test_the_independent_verifier_imports_only_what_the_doc_allows():
    path = ROOT / "tests" / "vault" / "attestations" / "independent_verifier.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"hashlib", "datetime", "typing", "base58", "rfc8785", "Cryptodome"}, imported
