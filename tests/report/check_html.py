#!/usr/bin/env python3
"""check_html.py FILE [NEEDLE...]: the report's HTML is well-formed and self-contained.

Well-formed: a doctype, every opened non-void element closed in order,
nothing left open. Self-contained: no <script>, no <link>, no src/href to
another resource. Each NEEDLE must appear in the document's text (entities
decoded). Exit 0, or 1 with the first problem on stderr.
"""
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}


class Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.text, self.doctype = [], [], [], False
        self.svgs = 0

    def handle_decl(self, decl):
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        self.check_attrs(tag, attrs)
        if tag == "svg":
            self.svgs += 1
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):
        self.check_attrs(tag, attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack:
            self.problems.append("line %d: </%s> closes nothing" % (self.getpos()[0], tag))
            return
        top, pos = self.stack.pop()
        if top != tag:
            self.problems.append("line %d col %d: </%s> closes <%s> opened at line %d col %d"
                                 % (self.getpos() + (tag, top) + pos))

    def handle_data(self, data):
        self.text.append(data)

    def check_attrs(self, tag, attrs):
        if tag in ("script", "link", "iframe", "img"):
            self.problems.append("<%s> is not allowed in a self-contained report" % tag)
        for k, v in attrs:
            if k in ("src", "href") and v and not v.startswith("#"):
                self.problems.append("<%s %s=%r>: external resource" % (tag, k, v))


def main():
    path, needles = sys.argv[1], sys.argv[2:]
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    c = Checker()
    c.feed(doc)
    c.close()
    if not c.doctype:
        c.problems.append("no <!DOCTYPE html>")
    for tag, pos in c.stack:
        c.problems.append("<%s> opened at line %d col %d is never closed" % ((tag,) + pos))
    text = " ".join(c.text)
    for n in needles:
        if n == "<svg>":
            if c.svgs == 0:
                c.problems.append("no <svg> chart")
        elif n not in text:
            c.problems.append("missing text %r" % n)
    if c.problems:
        sys.stderr.write("%s: %s\n" % (path, "\n".join(c.problems[:10])))
        return 1
    print("ok: %d bytes, %d svg charts" % (len(doc), c.svgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
