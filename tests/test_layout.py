"""The house rules: import arrows point one way (docs/architecture.md, "Layout").

``api -> vault -> crypto``; nothing imports ``api``; inside ``vault`` each context
imports only the contexts listed for it in ``ALLOWED``. Every import counts,
including those inside functions (the CLI imports heavy libraries lazily, but a
lazy import is still a dependency). Only imports under ``if TYPE_CHECKING:`` of
the runtime ``Vault`` are exempt: they name a type and run nothing.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BELOW_IDENTITY = {"core", "storage", "ledger", "keys"}
# The allowed arrows inside vault/: context -> the contexts it may import (itself always).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "storage": {"core"},
    "ledger": {"core", "storage"},
    "keys": {"core", "storage", "ledger"},
    "identity": BELOW_IDENTITY,
    "consent": BELOW_IDENTITY | {"identity"},
    "records": BELOW_IDENTITY | {"identity", "consent"},
    "rights": BELOW_IDENTITY | {"identity", "consent", "records"},
    "compliance": BELOW_IDENTITY | {"identity", "consent", "records", "rights"},
    "attestations": BELOW_IDENTITY | {"identity", "consent", "records"},
    "anchoring": {"core", "storage", "ledger"},
    "verification": BELOW_IDENTITY | {"identity", "consent", "records", "rights", "compliance", "anchoring"},
    # The composition root: opens the database, keys and secret store for the others.
    "runtime": {"core", "storage", "ledger", "keys"},
    "cli": {
        "core",
        "storage",
        "ledger",
        "keys",
        "identity",
        "consent",
        "records",
        "rights",
        "compliance",
        "anchoring",
        "verification",
        "attestations",
        "runtime",
        "witness",
    },
    # Another party's program: crypto only.
    "witness": set(),
}
# Which top-level packages each may import (third-party libraries aside).
TOP_LEVEL = {"crypto": {"crypto"}, "vault": {"vault", "crypto"}, "api": {"api", "vault", "crypto"}}
# Libraries a layer must not import at all.
FORBIDDEN_LIBRARIES = {
    "crypto": {"flask", "sqlalchemy", "vault", "api"},
    "vault": {"flask", "flask_smorest", "api"},
}
# Only crypto/ touches the raw primitives (docs/architecture.md, "Layout").
RAW_PRIMITIVES = {"Cryptodome", "py_ecc"}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str, bool]]:
    """(line, imported module, under TYPE_CHECKING) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only = _type_checking_lines(tree)
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: list[tuple[int, str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, node.lineno in typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "vault" and not node.level:  # from vault import runtime
                found.extend((node.lineno, f"vault.{alias.name}", node.lineno in typing_only) for alias in node.names)
            else:
                found.append((node.lineno, module, node.lineno in typing_only))
    return found


def context_of(module: str) -> str | None:
    """The vault context a dotted module belongs to (``vault.consent.policy`` -> ``consent``)."""
    parts = module.split(".")
    if parts[0] != "vault" or len(parts) < 2:
        return None
    return parts[1]


def violations(root: Path = ROOT) -> list[str]:
    found: list[str] = []
    for top, allowed_tops in TOP_LEVEL.items():
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root)
            own = context_of(".".join(rel.with_suffix("").parts)) if top == "vault" else None
            for line, module, typing_only in imports_of(path, root):
                head = module.split(".")[0]
                where = f"{rel}:{line} imports {module}"
                if head in FORBIDDEN_LIBRARIES.get(top, set()):
                    found.append(f"{where}: {top}/ never imports {head}")
                    continue
                if head in RAW_PRIMITIVES and top != "crypto":
                    found.append(f"{where}: only crypto/ imports {head}")
                    continue
                if head in TOP_LEVEL and head not in allowed_tops:
                    found.append(f"{where}: {top}/ may not import {head}/")
                    continue
                if top != "vault" or own is None or head != "vault":
                    continue
                target = context_of(module)
                if target is None:
                    found.append(f"{where}: import a context's module, not the vault package")
                    continue
                if target == own:
                    continue
                if typing_only and target == "runtime":
                    continue
                if target not in ALLOWED.get(own, set()):
                    found.append(f"{where}: {own} may not import {target}")
    return found


def test_every_vault_module_belongs_to_a_known_context() -> None:
    loose = sorted(p.stem for p in (ROOT / "vault").glob("*.py") if p.stem != "__init__")
    packages = sorted(p.name for p in (ROOT / "vault").iterdir() if (p / "__init__.py").exists())
    assert set(loose + packages) <= set(ALLOWED), set(loose + packages) - set(ALLOWED)
    assert len(loose) <= 12
    for name in packages:
        doc = ast.get_docstring(ast.parse((ROOT / "vault" / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"vault/{name}/__init__.py must say what it may import"


def test_imports_point_one_way() -> None:
    found = violations()
    assert not found, "imports against the arrows in docs/architecture.md:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("where", "line", "complaint"),
    [
        ("vault/ledger/ledger.py", "from vault.consent import policy", "ledger may not import consent"),
        ("vault/core/ids.py", "from vault.storage.models import Event", "core may not import storage"),
        ("vault/witness/client.py", "from vault.ledger import ledger", "witness may not import ledger"),
        ("vault/records/records.py", "import flask", "vault/ never imports flask"),
        ("crypto/merkle.py", "from vault.core.clock import utcnow", "crypto/ never imports vault"),
        ("vault/consent/policy.py", "from Cryptodome.Cipher import AES", "only crypto/ imports Cryptodome"),
        ("vault/rights/trail.py", "    from api.errors import problem", "vault/ never imports api"),
        ("vault/anchoring/service.py", "from vault.records import records", "anchoring may not import records"),
    ],
)
def test_a_planted_backwards_import_is_caught(tmp_path: Path, where: str, line: str, complaint: str) -> None:
    """A copy of the tree with one backwards import fails the rule and names the line."""
    for top in TOP_LEVEL:
        for path in (ROOT / top).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    planted = tmp_path / where
    source = planted.read_text(encoding="utf-8")
    if line.startswith("    "):
        source += f"\n\ndef _planted():\n{line}\n"
    else:
        source = f"{line}\n{source}"
    planted.write_text(source, encoding="utf-8")
    found = violations(tmp_path)
    assert len(found) == 1 and complaint in found[0] and found[0].startswith(where), found
