"""Reading n-best lists for reranking: groups of candidate sentences."""

from __future__ import annotations


def read_nbest(lines: list[str]) -> list[list[str]]:
    """Groups of candidates: TSV ``group_id<TAB>sentence`` lines, or blocks separated by blank lines."""
    content = [line for line in lines if line.strip()]
    if content and all("\t" in line for line in content):
        groups: dict[str, list[str]] = {}
        for line in content:
            group, sentence = line.split("\t", 1)
            groups.setdefault(group, []).append(sentence)
        return list(groups.values())
    blocks, current = [], []
    for line in lines + [""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks
