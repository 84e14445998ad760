"""Caption cleaning applied before T5 tokenisation, matching what LlamaGen (after DeepFloyd IF / PixArt)
did to its training captions. LlamaGen runs the whole cleaning twice.

Written from the published behaviour as an ordered table of rewrite rules. The upstream version uses
BeautifulSoup for HTML and ftfy for mojibake; here HTML is stripped with the standard library and ftfy
is used only when it is installed (it changes nothing for ordinary prompts).
"""
from __future__ import annotations

import html
import re
import urllib.parse
from html.parser import HTMLParser

_URL_TLDS = r"(?:com|co|ru|net|org|edu|gov|it)"
_FILE_EXTS = r"(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)"
_DASHES = "\u002D\u058A\u05BE\u1400\u1806\u2010-\u2015\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u301C\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D"
_BAD_PUNCT = re.compile(r"[#®•©™&@·º½¾¿¡§~)(\]\[}{|\\/*]+")
_SEPARATORS = re.compile(r"[-_]")

# (pattern, replacement), applied in order. Each line says what it removes or normalises.
_RULES_BEFORE_HTML = [
    (r"<person>", "person"),
    (r"\b((?:https?:(?:/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.]" + _URL_TLDS + r"[\w/-]*\b/?(?!@)))", ""),  # urls
    (r"\b((?:www:(?:/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.]" + _URL_TLDS + r"[\w/-]*\b/?(?!@)))", ""),  # www urls
]
_RULES_AFTER_HTML = [
    (r"@[\w\d]+\b", ""),  # @nicknames
    (r"[\u31c0-\u31ef\u31f0-\u31ff\u3200-\u32ff\u3300-\u33ff\u3400-\u4dbf\u4dc0-\u4dff\u4e00-\u9fff]+", ""),  # CJK
    ("[" + _DASHES + "]+", "-"),  # every kind of dash
    (r"[`´«»“”¨]", '"'),  # double quotes to one form
    (r"[‘’]", "'"),  # single quotes to one form
    (r"&quot;?", ""),
    (r"&amp", ""),
    (r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", " "),  # ip addresses
    (r"\d:\d\d\s+$", ""),  # article ids
    (r"\\n", " "),  # literal backslash-n
    (r"#\d{1,3}\b", ""),
    (r"#\d{5,}\b", ""),
    (r"\b\d{6,}\b", ""),
    (r"[\S]+\." + _FILE_EXTS, ""),  # file names
    (r"[\"']{2,}", '"'),
    (r"[.]{2,}", " "),
    (_BAD_PUNCT, " "),
    (r"\s+\.\s+", " "),
]
_RULES_AFTER_BASIC = [
    (r"\b[a-zA-Z]{1,3}\d{3,15}\b", ""),  # product codes like jc6640
    (r"\b[a-zA-Z]+\d+[a-zA-Z]+\b", ""),
    (r"\b\d+[a-zA-Z]+\d+\b", ""),
    (r"(worldwide\s+)?(free\s+)?shipping", ""),
    (r"(free\s)?download(\sfree)?", ""),
    (r"\bclick\b\s(?:for|on)\s\w+", ""),
    (r"\b" + _FILE_EXTS + r"(\simage[s]?)?", ""),
    (r"\bpage\s+\d+\b", ""),
    (r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b", " "),
    (r"\b\d+\.?\d*[xх×]\d+\.?\d*\b", ""),  # sizes like 1920x1080
    (r"\b\s+\:\s+", ": "),
    (r"(\D[,\./])\b", r"\1 "),  # space after punctuation
    (r"\s+", " "),
]
_RULES_FINAL = [
    (r"^[\"']([\w\W]+)[\"']$", r"\1"),  # surrounding quotes
    (r"^['_,\-:;]", ""),
    (r"['_,\-:+]$", ""),
    (r"^\.\S+$", ""),
]


def _compile(rules):
    return [(re.compile(p) if isinstance(p, str) else p, r) for p, r in rules]


_BEFORE_HTML, _AFTER_HTML, _AFTER_BASIC, _FINAL = map(_compile, (_RULES_BEFORE_HTML, _RULES_AFTER_HTML,
                                                                  _RULES_AFTER_BASIC, _RULES_FINAL))


_UNKNOWN_ENTITY_SEMI = re.compile(r"&([a-zA-Z][a-zA-Z0-9]*);")
_UNKNOWN_ENTITY_END = re.compile(r"&([a-zA-Z][a-zA-Z0-9]*)$")


class _TextOnly(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def _strip_html(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    # As BeautifulSoup's html.parser treats unknown references: "&name;" loses its ";", and a
    # trailing "&name" loses its "&".
    text = _UNKNOWN_ENTITY_SEMI.sub(r"&\1", "".join(parser.parts))
    return _UNKNOWN_ENTITY_END.sub(r"\1", text)


def _fix_text(text: str) -> str:
    try:
        import ftfy
    except ImportError:
        return text
    return ftfy.fix_text(text)


def _apply(rules, text: str) -> str:
    for pattern, repl in rules:
        text = pattern.sub(repl, text)
    return text


def clean_caption_once(caption: str) -> str:
    text = urllib.parse.unquote_plus(str(caption)).strip().lower()
    text = _apply(_BEFORE_HTML, text)
    text = _strip_html(text)
    text = _apply(_AFTER_HTML, text)
    if len(_SEPARATORS.findall(text)) > 3:  # this-is-a-slug / snake_case captions become words
        text = _SEPARATORS.sub(" ", text)
    text = html.unescape(html.unescape(_fix_text(text))).strip()
    text = _apply(_AFTER_BASIC, text)
    return _apply(_FINAL, text).strip()


def clean_caption(caption: str) -> str:
    """The full LlamaGen caption preprocessing (cleaning applied twice)."""
    return clean_caption_once(clean_caption_once(caption))
