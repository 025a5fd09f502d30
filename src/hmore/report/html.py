"""A small self-contained HTML report: headings, text, figures (images or videos), tables and commands.

The page has no external CSS, JavaScript, fonts or network links; figures are linked by paths relative to the page,
so the report folder can be moved or zipped as a whole. All text is escaped.

Example::

    report = Report("hmore demo")
    report.add_section("Clips", "Two generated clips ...")
    report.add_figure(out / "walk.mp4", "frame | flow | masks | skeleton", poster=out / "walk.png")
    report.add_table([["walk", 48]], header=["clip", "frames"])
    report.add_code("hmore demo -o out/demo")
    report.save(out / "index.html")
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from hmore.io.atomic import write_text_atomic

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
VIDEO_SUFFIXES = (".mp4", ".webm")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; background: #fff; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #eee; padding-bottom: .2em; }
figure { margin: 1em 0; }
figure img, figure video { max-width: 100%; height: auto; border: 1px solid #ccc; image-rendering: auto; }
figcaption { color: #555; font-size: .92em; margin-top: .3em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: .6em .8em; overflow-x: auto; }
footer { margin-top: 3em; color: #888; font-size: .85em; }
""".strip()


@dataclass(frozen=True)
class _Block:
    kind: str  # "section", "text", "figure", "table", "code"
    data: tuple


class Report:
    """An HTML page built block by block, in order.

    Args:
        title: the page title and top heading.
        intro: optional text under the title (paragraphs separated by blank lines).
    """

    def __init__(self, title: str, *, intro: str | None = None) -> None:
        self.title = title
        self._blocks: list[_Block] = []
        if intro:
            self.add_text(intro)

    def add_section(self, title: str, text: str | None = None) -> Report:
        """Start a section: an ``<h2>`` heading and optional text (blank lines separate paragraphs)."""
        self._blocks.append(_Block("section", (title,)))
        if text:
            self.add_text(text)
        return self

    def add_text(self, text: str) -> Report:
        """Add paragraphs of plain text (escaped; blank lines separate paragraphs)."""
        self._blocks.append(_Block("text", (text,)))
        return self

    def add_figure(
        self, path: str | Path, caption: str = "", *, poster: str | Path | None = None, width: int | None = None
    ) -> Report:
        """Add an image (png/jpg/gif/webp/svg) or a video (mp4/webm, shown looping, muted, with controls).

        Args:
            path: the file (absolute, or relative to the current directory); the page links to it by a path
                relative to the folder the page is saved in.
            caption: text under the figure.
            poster: for a video, an image shown before it plays (and by browsers that cannot play it).
            width: display width in CSS pixels (default: the file's own width, at most the page's).
        """
        path = Path(path).resolve()
        suffix = path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            raise ValueError(
                f"cannot show {path.name} in a report: use one of {', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}"
            )
        if poster is not None and suffix not in VIDEO_SUFFIXES:
            raise ValueError(f"a poster only makes sense for a video, not {path.name}")
        poster = None if poster is None else Path(poster).resolve()
        self._blocks.append(_Block("figure", (path, caption, poster, width)))
        return self

    def add_table(self, rows: Sequence[Sequence[object]], header: Sequence[str] | None = None) -> Report:
        """Add a table; cells are shown with ``str`` (floats with 4 significant digits), numbers right-aligned."""
        rows = [list(r) for r in rows]
        width = len(header) if header is not None else (len(rows[0]) if rows else 0)
        for i, r in enumerate(rows):
            if len(r) != width:
                raise ValueError(f"table row {i} has {len(r)} cells, expected {width}")
        self._blocks.append(_Block("table", (rows, None if header is None else list(header))))
        return self

    def add_code(self, cmd: str) -> Report:
        """Add a command (or code) shown verbatim, e.g. the command that reproduces a figure."""
        self._blocks.append(_Block("code", (cmd,)))
        return self

    def links(self) -> list[Path]:
        """The files the report links to, as absolute paths (figures and posters)."""
        out = []
        for b in self._blocks:
            if b.kind == "figure":
                out.append(b.data[0])
                if b.data[2] is not None:
                    out.append(b.data[2])
        return out

    def render(self, base_dir: str | Path) -> str:
        """The page as a string, with links relative to ``base_dir`` (the folder the page will live in)."""
        base = Path(base_dir).resolve()
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(self.title)}</title>",
            f"<style>\n{_STYLE}\n</style>",
            "</head>",
            "<body>",
            f"<h1>{_esc(self.title)}</h1>",
        ]
        for b in self._blocks:
            parts.append(self._render_block(b, base))
        parts += ["<footer>Written by hmore.</footer>", "</body>", "</html>", ""]
        return "\n".join(parts)

    def save(self, path: str | Path, *, check_links: bool = True) -> Path:
        """Write the page atomically to ``path`` (e.g. ``out / "index.html"``).

        Args:
            path: the HTML file; its folder is created if needed.
            check_links: raise ``FileNotFoundError`` naming the first linked file that does not exist.

        Returns:
            ``path``.
        """
        path = Path(path)
        base = path.parent
        if check_links:
            for link in self.links():
                if not link.exists():
                    raise FileNotFoundError(2, "report links to a missing file", str(link))
        write_text_atomic(path, self.render(base))
        log.info("wrote report %s", path)
        return path

    # -- rendering -------------------------------------------------------------------------------------------------

    def _render_block(self, b: _Block, base: Path) -> str:
        if b.kind == "section":
            return f"<h2>{_esc(b.data[0])}</h2>"
        if b.kind == "text":
            paras = [p.strip() for p in b.data[0].strip().split("\n\n") if p.strip()]
            return "\n".join(f"<p>{_esc(p)}</p>" for p in paras)
        if b.kind == "code":
            return f"<pre><code>{_esc(b.data[0])}</code></pre>"
        if b.kind == "table":
            rows, header = b.data
            out = ["<table>"]
            if header is not None:
                out.append("<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>")
            for r in rows:
                cells = []
                for c in r:
                    cls = ' class="num"' if isinstance(c, int | float) and not isinstance(c, bool) else ""
                    cells.append(f"<td{cls}>{_esc(_fmt(c))}</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</table>")
            return "\n".join(out)
        if b.kind == "figure":
            path, caption, poster, width = b.data
            src = _href(path, base)
            size = f' width="{int(width)}"' if width else ""
            if path.suffix.lower() in VIDEO_SUFFIXES:
                mime = "video/mp4" if path.suffix.lower() == ".mp4" else "video/webm"
                poster_attr = f' poster="{_href(poster, base)}"' if poster is not None else ""
                media = (
                    f"<video controls loop muted autoplay playsinline{poster_attr}{size}>"
                    f'<source src="{src}" type="{mime}">'
                    f'Your browser cannot play this video: <a href="{src}">download it</a>.</video>'
                )
            else:
                media = f'<img src="{src}" alt="{_esc(caption or path.name)}"{size}>'
            cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
            return f"<figure>{media}{cap}</figure>"
        raise AssertionError(f"unknown block kind {b.kind}")  # pragma: no cover


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(c: object) -> str:
    if isinstance(c, float):
        return f"{c:.4g}"
    return str(c)


def _href(path: Path, base: Path) -> str:
    """A URL for the absolute ``path`` relative to the folder ``base``."""
    rel = os.path.relpath(path, base)
    return html.escape(quote(Path(rel).as_posix()), quote=True)
