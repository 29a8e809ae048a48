"""MkDocs hooks: the site is built from the files users already read.

* `index.md` is the README; `CHANGELOG.md` the changelog.
* Every page a Markdown page links to (study READMEs, plots, scripts, CSVs)
  is added at its repository path, so the README's relative links work on
  the site and a link to a file that does not exist is a (strict) warning.
* Each keras.io-format tutorial `examples/tutorials/*.py` becomes a page:
  its header gives the title, the module-level string blocks are Markdown,
  the code between them becomes code blocks.
"""

import ast
import pathlib
import re

from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "examples" / "tutorials"
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_HEADER_FIELD = re.compile(r"^(\w[\w ]*):\s*(.*)$")


def tutorial_paths():
    """`examples/tutorials/*.py` with a keras.io header (not helpers such as to_notebook.py)."""
    return sorted(p for p in TUTORIALS.glob("*.py") if not p.name.startswith("_")
                  and (ast.get_docstring(ast.parse(p.read_text())) or "").startswith("Title:"))


def _header(text):
    fields = {}
    for line in text.strip().splitlines():
        match = _HEADER_FIELD.match(line.strip())
        if match:
            fields[match.group(1).lower()] = match.group(2)
    return fields


def tutorial_markdown(path):
    """Markdown for one keras.io-format tutorial (header, prose blocks, code)."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    parts, cursor, header = [], 0, None

    def code(upto):
        block = "\n".join(lines[cursor:upto]).strip("\n")
        if block.strip():
            parts.append(f"```python\n{block}\n```")

    for node in tree.body:
        is_text = (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        )
        if not is_text:
            continue
        code(node.lineno - 1)
        text = node.value.value
        if header is None:
            header = _header(text)
            title = header.get("title", path.stem)
            meta = [f"**{k.capitalize()}:** {v}" for k, v in header.items() if k != "title"]
            parts.append(f"# {title}\n\n" + "<br>\n".join(meta))
        else:
            parts.append(text.strip("\n"))
        cursor = node.end_lineno
    code(len(lines))
    parts.append(f"*Source: `examples/tutorials/{path.name}`; run it with `python "
                 f"examples/tutorials/{path.name}`.*")
    return "\n\n".join(parts) + "\n"


def on_config(config):
    pages = [{_header_title(p): f"tutorials/{p.stem}.md"} for p in tutorial_paths()]
    for i, entry in enumerate(config["nav"] or []):
        if isinstance(entry, dict) and "Tutorials" in entry:
            config["nav"][i] = {"Tutorials": pages or ["tutorials/index.md"]}
    return config


def _header_title(path):
    tree = ast.parse(path.read_text())
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        return _header(first.value.value).get("title", path.stem)
    return path.stem


def _linked(markdown, page_path):
    """Repository paths that `markdown` (at `page_path`) links to."""
    for target in _LINK.findall(markdown):
        if "://" in target or target.startswith(("mailto:", "/")):
            continue
        resolved = (ROOT / page_path).parent / target
        try:
            relative = resolved.resolve().relative_to(ROOT)
        except ValueError:
            continue
        yield relative


def on_files(files, config):
    generated = {"index.md": (ROOT / "README.md").read_text()}
    if (ROOT / "CHANGELOG.md").exists():
        generated["CHANGELOG.md"] = (ROOT / "CHANGELOG.md").read_text()
    for path in tutorial_paths():
        generated[f"tutorials/{path.stem}.md"] = tutorial_markdown(path)
    if not tutorial_paths():
        generated["tutorials/index.md"] = "# Tutorials\n\nNone yet.\n"
    studies = sorted(ROOT.glob("examples/*/README.md")) + [ROOT / "benchmarks" / "README.md"]
    generated["studies.md"] = "# Studies and benchmarks\n\n" + "\n".join(
        f"* [{p.parent.name}]({p.relative_to(ROOT).as_posix()})" for p in studies if p.exists()
    ) + "\n"

    pending = [(name, text, name if name != "index.md" else "README.md")
               for name, text in generated.items()]
    added = set(generated)
    for name, text, _ in pending:
        files.append(File.generated(config, name, content=text))
    while pending:
        _, text, repo_path = pending.pop()
        for relative in _linked(text, repo_path):
            uri = relative.as_posix()
            if uri in added or not (ROOT / relative).is_file():
                continue  # a missing target stays a broken link: mkdocs warns
            added.add(uri)
            content = (ROOT / relative).read_bytes()
            files.append(File.generated(config, uri, content=content))
            if uri.endswith(".md"):
                pending.append((uri, content.decode(), uri))
    return files
