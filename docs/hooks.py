"""MkDocs hooks: the API reference's tables of options, made from the options' declarations
(``rnnkit.options``) when the site is built, so that they never drift from the code."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- options -->"


def options_tables(markdown: str) -> str:
    """``markdown`` with its marker replaced by a table of each kind's training options, and of
    the options of generating and serving."""
    if MARKER not in markdown:
        return markdown
    from rnnkit import kinds
    from rnnkit.options import table

    sections = []
    for name in kinds.names():
        kind = kinds.lookup(name)
        if kind.options is not None:
            sections.append(f"### `{kind.made_by}`: a {kind.title}\n\n{table(kind.part('options'))}\n")
    for title, ref in USING:
        sections.append(f"### {title}\n\n{table(kinds.resolve(ref))}\n")
    return markdown.replace(MARKER, "\n".join(sections))


# The options of using a model, declared the same way (the Python column: the keyword, or for
# the server the field of ``rnnkit.serve.Limits`` / ``Connections``).
USING = [("`rnnkit generate`: `LanguageModel.generate`", "rnnkit.lm.generate:Sampling"),
         ("`rnnkit serve`: what one request may ask for (`rnnkit.serve.Limits`)", "rnnkit.serve.options:Limits"),
         ("`rnnkit serve`: connections (`rnnkit.serve.options.Connections`)", "rnnkit.serve.options:Connections")]


def on_page_markdown(markdown: str, **_: Any) -> str:
    return options_tables(markdown)
