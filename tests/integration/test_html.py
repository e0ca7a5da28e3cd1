"""The HTML export opened in a real browser: Debian's chromium, headless,
in a network namespace of its own (no network at all), on pages made from
snapshots of real programs and a real notebook kernel."""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import load, run_agent
from test_report import PY, HERE, notebook_snapshot, review

CHROMIUM = shutil.which("chromium")


def browse(page, fragment=""):
    """The page's DOM after its script ran, and what it said on the
    console (chromium logs console messages and uncaught errors as
    INFO:CONSOLE lines)."""
    assert CHROMIUM, "chromium is missing: scripts/install-deps.sh installs it"
    profile = tempfile.mkdtemp()
    try:
        r = subprocess.run(
            ["unshare", "--net", CHROMIUM, "--headless", "--no-sandbox",
             "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--user-data-dir=" + profile, "--window-size=1400,1000",
             "--dump-dom",
             "file://%s%s" % (page, fragment)],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-2000:]
    # Only the page's own messages: chromium's internal pages (chrome://,
    # e.g. "Slow network is detected" for its own fonts) log there too.
    console = [l for l in r.stderr.splitlines()
               if ":CONSOLE" in l and "source: chrome://" not in l]
    return r.stdout, console


def attr(dom, name):
    m = re.search(r'%s="([^"]*)"' % name, dom)
    return m and html.unescape(m.group(1))


def text_of(dom, elem_id):
    m = re.search(r'id="%s"[^>]*>(.*?)</div>' % elem_id, dom, re.S)
    return m and html.unescape(re.sub(r"<[^>]+>", "", m.group(1)))


def boxes(dom):
    """The flame graph's labelled boxes, in drawing order."""
    return [html.unescape(b) for b in
            re.findall(r'<div class="frame[^"]*"[^>]*>([^<]*)</div>', dom)]


def drawn(dom, console):
    assert attr(dom, "data-rendered") == "yes", dom[-3000:]
    assert attr(dom, "data-error") is None, attr(dom, "data-error")
    assert console == [], console


@pytest.fixture(scope="module")
def notebook_page(tmp_path_factory):
    snap = notebook_snapshot(tmp_path_factory.mktemp("nb") / "run")
    page = snap.with_suffix(".html")
    r = review("report", snap, "--format", "html")
    assert r.returncode == 0, r.stderr
    page.write_text(r.stdout)
    return page, load(snap)


def test_notebook_peak_page(notebook_page):
    page, snap = notebook_page
    dom, console = browse(page)
    drawn(dom, console)
    # The cell table comes first, the cell running at the peak on top.
    rows = re.findall(r'<tr class="cellrow[^"]*">(.*?)</tr>', dom, re.S)
    cells = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
             for r in rows]
    assert cells[0][0] == "\u2605 In [4]", cells[0]
    assert cells[0][1] == "256.0 MiB"
    assert cells[0][6].startswith("tmp = np.ones(32 * 1024 * 1024)")
    assert len(cells) == len(snap["peak"]["cells"])
    # The flame graph: root, then cells as the first level, In [4] widest.
    b = boxes(dom)
    assert b[0] == "all" and b[1] == "In [4]", b[:5]
    assert int(attr(dom, "data-boxes")) > 20
    want = "peak %.1f MiB in " % (snap["peak"]["bytes"] / 1048576)
    assert text_of(dom, "meta").startswith(want), text_of(dom, "meta")


def test_notebook_page_zoom_and_search(notebook_page):
    page, snap = notebook_page
    # #cell=: zoomed on In [3], only its 128 MiB array's stack is drawn
    # (plus the root above it, dimmed).
    dom, console = browse(page, "#cell=In%20[3]")
    drawn(dom, console)
    b = boxes(dom)
    assert b[:2] == ["all", "In [3]"], b
    assert any(x.startswith("ones (numeric.py:") for x in b), b
    assert not any(x == "In [4]" for x in b)
    assert "128.0 MiB" in text_of(dom, "info")
    # #search=: numpy's ones() holds In [3]'s and In [4]'s arrays, 384 MiB
    # at the peak, counted once however many boxes match.
    ones = sum(s["bytes"] for s in snap["peak"]["stacks"]
               if any(f.get("function") == "ones" for f in s["frames"]))
    dom, console = browse(page, "#search=%5Eones%20")
    drawn(dom, console)
    m = re.search(r'id="matched">matched ([^<]*) \(', dom)
    assert m, dom[-2000:]
    want = "%.1f MiB" % (ones / 1048576)
    assert m.group(1) == want, (m.group(1), want)
    assert 'class="frame match"' in dom


def test_agent_writes_the_page_itself(tmp_path):
    """-o FILE.html: the command's peak goes straight to a page, 0600,
    that draws make_big's 60,000,002 bytes at its line."""
    out = tmp_path / "peak.html"
    r = run_agent(["-o", str(out), "--", PY,
                   os.path.join(HERE, "py", "nested.py")])
    assert r.returncode == 0, r.stderr
    assert os.stat(out).st_mode & 0o7777 == 0o600
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<script src" not in text and "<link" not in text
    dom, console = browse(str(out), "#search=make_big")
    drawn(dom, console)
    m = re.search(r'id="matched">matched ([^<]*) \(', dom)
    assert m and m.group(1) == "57.2 MiB", dom[-2000:]
    assert "make_big (nested.py:6)" in boxes(dom)


def test_agent_writes_folded_files(tmp_path):
    """--format folded with -D: the file is named .folded and holds the
    stacks flamegraph.pl reads, the biggest one exactly."""
    r = run_agent(["--format", "folded", "-D", str(tmp_path), "--", PY,
                   os.path.join(HERE, "py", "nested.py")])
    assert r.returncode == 0, r.stderr
    files = [f for f in os.listdir(tmp_path) if f.endswith("-exit.folded")]
    assert len(files) == 1, os.listdir(tmp_path)
    lines = (tmp_path / files[0]).read_text().splitlines()
    top = max(lines, key=lambda l: int(l.rsplit(" ", 1)[1]))
    stack, count = top.rsplit(" ", 1)
    assert count == "60000002"
    assert stack.split(";")[3] == "make_big (nested.py:6)"


def svg_attrs(dom, tag, cls=None, ident=None):
    """Attributes of each <tag> in the page's SVG with that class or id."""
    out = []
    for m in re.finditer(r"<%s ([^>]*)>" % tag, dom):
        a = dict((k, html.unescape(v)) for k, v in
                 re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        if (cls is None or cls in a.get("class", "").split()) and \
                (ident is None or a.get("id") == ident):
            out.append(a)
    return out


def with_click(page, selector, dst):
    """The page with a script after its own that clicks selector, as a
    user would (a DOM click event through the page's own listeners)."""
    text = open(page).read().replace(
        "</body>", "<script>document.querySelector(%r).dispatchEvent("
        "new MouseEvent('click', {bubbles: true}));</script></body>"
        % selector)
    dst.write_text(text)
    return str(dst)


def test_notebook_timeline_chart(notebook_page, tmp_path):
    """The chart above the flame graph: each cell's span where the
    timeline puts it on the time axis, the peak marker at the peak's time
    and bytes, inside In [4]'s span; a click on In [3]'s span zooms the
    flame graph to In [3]. A screenshot is left in tmp_path."""
    page, snap = notebook_page
    t = snap["timeline"]
    dom, console = browse(page)
    drawn(dom, console)
    chart = svg_attrs(dom, "svg", ident="timeline")[0]
    x0, x1 = float(chart["data-x0"]), float(chart["data-x1"])
    y0, y1 = float(chart["data-y0"]), float(chart["data-y1"])
    span = len(t["live"]) * t["interval_ms"]
    assert float(chart["data-span-ms"]) == span
    ymax = float(chart["data-ymax"])
    assert t["peak"]["bytes"] <= ymax < 2 * t["peak"]["bytes"]

    def x_of(ms):
        return x0 + (x1 - x0) * min(max(ms / span, 0), 1)

    rects = {r["data-cell"]: r for r in svg_attrs(dom, "rect", "tl-span")}
    want = {c["label"] for c in snap["peak"]["cells"]} - \
        {"(outside cells)", "(before attach)"}
    assert set(rects) == want == {c["label"] for c in t["cells"]}, rects
    for c in t["cells"]:
        r = rects[c["label"]]
        assert abs(float(r["x"]) - x_of(c["start_ms"])) < 0.1, (c, r)
        end = c["end_ms"] if c["end_ms"] is not None else span
        assert abs(float(r["x"]) + float(r["width"]) -
                   max(x_of(end), x_of(c["start_ms"]) + 2)) < 0.2, (c, r)
    peak = svg_attrs(dom, "circle", ident="tl-peak")[0]
    px, py = float(peak["cx"]), float(peak["cy"])
    assert abs(px - x_of(t["peak"]["at_ms"])) < 0.1
    assert abs(py - (y0 - (y0 - y1) * t["peak"]["bytes"] / ymax)) < 0.1
    # In [4]'s 256 MiB drove the peak. Its span is exact (the cell
    # markers' times); the peak's time is when the agent read the events,
    # up to a tick (100 ms) later: it can fall just after the cell's end.
    four, tick = rects["In [4]"], (x1 - x0) * 100 / span
    assert float(four["x"]) <= px <= \
        float(four["x"]) + float(four["width"]) + tick, (four, px)
    assert t["peak"]["bytes"] == snap["peak"]["bytes"] == max(t["live"])
    assert "peak %.1f MiB" % (snap["peak"]["bytes"] / 1048576) in dom

    clicked = with_click(page, '.tl-span[data-cell="In [3]"]',
                         tmp_path / "clicked.html")
    dom, console = browse(clicked)
    drawn(dom, console)
    b = boxes(dom)
    assert b[:2] == ["all", "In [3]"] and "In [4]" not in b, b
    assert "128.0 MiB" in text_of(dom, "info")
    sel = [r["data-cell"] for r in svg_attrs(dom, "rect", "sel")]
    assert sel == ["In [3]"], sel

    shot = tmp_path / "timeline.png"
    screenshot(page, shot)
    assert shot.stat().st_size > 20000


def screenshot(page, png):
    """What a 1400x1000 window shows of the page, as a PNG."""
    profile = tempfile.mkdtemp()
    try:
        r = subprocess.run(
            ["unshare", "--net", CHROMIUM, "--headless", "--no-sandbox",
             "--disable-gpu", "--user-data-dir=" + profile,
             "--window-size=1400,1000", "--hide-scrollbars",
             "--screenshot=%s" % png, "file://%s" % page],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]


def test_page_without_a_timeline_hides_the_chart(notebook_page, tmp_path):
    """Snapshots written before the timeline: no chart, the rest drawn."""
    page, snap = notebook_page
    old = tmp_path / "old.json"
    old.write_text(json.dumps({k: v for k, v in snap.items()
                               if k != "timeline"}))
    r = review("report", old, "--format", "html")
    assert r.returncode == 0, r.stderr
    (tmp_path / "old.html").write_text(r.stdout)
    dom, console = browse(str(tmp_path / "old.html"))
    drawn(dom, console)
    assert re.search(r'id="tlsection" style="display: ?none;?"', dom)
    assert "<rect" not in dom and boxes(dom)[:2] == ["all", "In [4]"]
