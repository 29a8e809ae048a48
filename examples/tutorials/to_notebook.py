"""Converts a keras.io-format tutorial (`examples/tutorials/*.py`) to a Jupyter notebook.

    python examples/tutorials/to_notebook.py examples/tutorials/grda_directional_pruning.py
    python examples/tutorials/to_notebook.py examples/tutorials/*.py --out-dir notebooks

The tutorial's first module-level string is its header (`Title:`, `Author:`,
...) and becomes a Markdown title cell; every other module-level string
becomes a Markdown cell and the code between them a code cell. Plots call
`plt.show()`, so they render inline in Jupyter. The notebook is written next
to the tutorial (`<name>.ipynb`) unless `--out-dir` is given; it is not
executed (open it in Jupyter and run it, or `jupyter nbconvert --execute`).
"""

import argparse
import ast
import os
import re

import nbformat

_HEADER_FIELD = re.compile(r"^(\w[\w ]*):\s*(.*)$")


def cells(source):
    """`[(kind, text), ...]` of a tutorial's source; kind is "markdown" or "code"."""
    lines = source.splitlines()
    result, cursor, header_done = [], 0, False

    def code(upto):
        block = "\n".join(lines[cursor:upto]).strip("\n")
        if block.strip():
            result.append(("code", block))

    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            continue
        code(node.lineno - 1)
        text = node.value.value.strip("\n")
        if not header_done:
            text = header_markdown(text)
            header_done = True
        result.append(("markdown", text))
        cursor = node.end_lineno
    code(len(lines))
    return result


def header_markdown(text):
    """`Title: T` / `Author: A` / ... as `# T` and one bold line per other field."""
    fields = {}
    for line in text.splitlines():
        match = _HEADER_FIELD.match(line.strip())
        if match:
            fields[match.group(1)] = match.group(2)
    title = fields.pop("Title", "Tutorial")
    return f"# {title}\n\n" + "<br>\n".join(f"**{k}:** {v}" for k, v in fields.items())


def to_notebook(path):
    """The tutorial at `path` as an `nbformat` v4 notebook (not executed)."""
    with open(path) as f:
        source = f.read()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell(text) if kind == "markdown"
                      else nbformat.v4.new_code_cell(text) for kind, text in cells(source)]
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tutorials", nargs="+", help="tutorial .py files")
    parser.add_argument("--out-dir", help="where to write the .ipynb files "
                        "(default: next to each tutorial)")
    args = parser.parse_args(argv)
    written = []
    for path in args.tutorials:
        notebook = to_notebook(path)
        nbformat.validate(notebook)
        directory = args.out_dir or os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        target = os.path.join(directory, os.path.splitext(os.path.basename(path))[0] + ".ipynb")
        nbformat.write(notebook, target)
        print(target)
        written.append(target)
    return written


if __name__ == "__main__":
    main()
