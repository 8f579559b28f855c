"""Exactness check: tokenize-pack --encode/--decode against HF tokenizers and tiktoken (PyPI).

Generates a multilingual TEST corpus (fixed seed; not the fixtures' training text) with emoji (ZWJ
sequences, flags, skin tones, keycaps, tag sequences), CJK, Korean, Thai, Arabic, Devanagari,
combining marks (composed and decomposed, NFC-changing ones), long whitespace runs (spaces, tabs,
newlines, \\r\\n, Unicode spaces), digits and long numbers (also non-ASCII digits), contractions in
every case ('s 'T 'Re ...), punctuation runs, very long words, control characters, the empty text,
text of only spaces, invalid UTF-8 (raw bytes in the JSONL line) and special-token strings inside
text. Writes it as JSONL and runs the tool on it once per case:

  gpt2|llama3|qwen2/special  --tokenizer F/tokenizer.json --allow-special  vs HF
                             Tokenizer.from_file(F).encode(text, add_special_tokens=False).ids
                             (HF always matches added tokens)
  gpt2|llama3|qwen2/plain    --tokenizer F/tokenizer.json (no --allow-special)  vs the same HF
                             tokenizer with its added_tokens removed (special strings are text)
  tiktoken-cl100k/plain      --tokenizer llama3.tiktoken --pattern cl100k  vs tiktoken
                             Encoding(pat_str=tiktoken's cl100k_base pattern).encode_ordinary
  tiktoken-cl100k/special    ... --allow-special --special-token T=ID ...  vs tiktoken
                             .encode(text, allowed_special="all"), both with cl100k_base's special
                             tokens (<|endoftext|> 100257, <|fim_*|> 100258-100260, <|endofprompt|>
                             100276; a rank file carries none, so the tool is told them)
  tiktoken-gpt2/plain        --pattern gpt2   vs encode_ordinary with tiktoken's r50k pattern
  tiktoken-o200k/plain       --pattern o200k  vs encode_ordinary with tiktoken's o200k pattern
  tiktoken-regex/plain       --pattern <Qwen2's regex, given as text>  vs encode_ordinary with it

The text a reference sees is the document's bytes decoded with errors="replace" (U+FFFD per
maximal subpart), which is what the tool must do with invalid UTF-8 before tokenizing.
Every document's ids must be identical; a mismatch prints the case, the document, the first
differing position, both id runs there with their token bytes, and the text around it.
Then, for every case, the tool's own ids go back through --decode: decode(encode(x)) must equal x
byte for byte (x after the U+FFFD replacement; NFC-normalized for qwen2, whose normalizer is NFC).

Prints per case 'encode CASE: N documents, 0 mismatches ...', 'decode CASE: N documents,
0 mismatches ...' and an informational 'time CASE: ...' line; on any mismatch the details go to
stderr and the exit status is 1.

usage: python check_tokenizer_exact.py TOKENIZE_PACK FIXTURES_DIR [WORKDIR] [--only CASE,...]
(FIXTURES_DIR as written by make_tokenizer_fixtures.py; --only takes case names or prefixes.)
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unicodedata

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # HF timings are single-threaded; the machine is shared
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["TIKTOKEN_CACHE_DIR"] = ""  # tiktoken would otherwise cache local files by path, stale on rebuild

import tiktoken  # noqa: E402
import tiktoken.load  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_fixtures import CL100K_PATTERN, QWEN2_PATTERN, token_bytes  # noqa: E402

SEED = 7031

# tiktoken 0.14's own patterns (tiktoken_ext/openai_public.py), i.e. what `--pattern NAME` means.
TIKTOKEN_PATTERNS = {
    "cl100k": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    "o200k": "|".join([
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]),
}
# cl100k_base's special tokens (tiktoken_ext/openai_public.py).
CL100K_SPECIALS = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                   "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
SPECIAL_STRINGS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|fim_prefix|>",
                   "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"]

failures = []


def fail(msg):
    failures.append(msg)
    print("check_tokenizer_exact: " + msg, file=sys.stderr)


# --------------------------------------------------------------------------------------------
# The test corpus: a list of documents as raw bytes (not all valid UTF-8).

TEST_SENTENCES = [
    "Pack my box with five dozen liquor jugs.", "How vexingly quick daft zebras jump!",
    "We're sure they'd've LOVED it; it's what I'M saying, isn't it?", "Sphinx of black quartz, judge my vow.",
    "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.", "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg.",
    "Portez ce vieux whisky au juge blond qui fume ; l'œuvre d'Ève était là.", "Voix ambiguë d'un cœur qui, au zéphyr, préfère les jattes de kiwis.",
    "В чащах юга жил бы цитрус? Да, но фальшивый экземпляр!", "Широкая электрификация южных губерний даст мощный толчок.",
    "Τάχιστη αλώπηξ βαφής ψημένη γη, δρασκελίζει υπέρ νωθρού κυνός.", "Ξεσκεπάζω τὴν ψυχοφθόρα βδελυγμία.",
    "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت يَحظى الضَجيعُ بِها نَجلاءَ مِعطارِ", "أبجد هوز حطي كلمن سعفص قرشت ثخذ ضظغ.",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम, अयोध्या के महाराज दशरथ के बड़े सपुत्र थे।",
    "क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़ — नुक़्ता वाले अक्षर।", "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
    "דג סקרן שט בים מאוכזב ולפתע מצא חברה.", "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。", "我们在深圳的数据中心部署了新的集群。",
    "色は匂へど散りぬるを我が世誰ぞ常ならむ", "ｶﾀｶﾅ と ﾊﾝｶｸ、全角ＡＢＣ１２３。", "키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다.",
    "Tiếng Việt: Trăm năm trong cõi người ta, chữ tài chữ mệnh khéo là ghét nhau.",
    "Hello 👋🏼 world 🌍! Family 👨‍👩‍👧 and 🧑🏽‍💻 coding; flags 🇬🇧🇨🇦; 🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland.",
    "return {k: v for k, v in sorted(d.items()) if v is not None}  # dict-comp",
    "std::vector<std::pair<int,int>> v{{1,2},{3,4}}; auto [a, b] = v[0];",
    "$ curl -sSL https://example.org/x.sh | bash -s -- --prefix=/opt/x && echo ok",
    "E = mc², ∀x∈ℝ: x² ≥ 0; ∑_{i=1}^{n} i = n(n+1)/2 ≈ 5.05×10³.",
]

# Unicode blocks for random character soup (no surrogates).
RANGES = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF),
          (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F),
          (0x2100, 0x22FF), (0x2500, 0x257F), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
          (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF), (0x20000, 0x2A6DF), (0xE0020, 0xE007F)]


def edge_cases():
    """Hand-picked documents (str, or bytes for invalid UTF-8)."""
    docs = [
        # empty, whitespace only, whitespace runs
        "", " ", "  ", "        ", "\t", "\n", "\r\n", "\r", " \n ", "\n\n\n", "\r\n\r\n  \r\n\t",
        "  \t \n\r\n   \t\t\n  x", " " * 10000, "\n" * 3000, "\t" * 500, "\r\n" * 400, " \t" * 700 + "end",
        "     hello", "hello     ", "hello     world", "a \n b", "a  \n\n  b", "x\n \n \ny", "  \n",
        "word\n\n\n\n    indented\n\tmore", "trailing spaces then newline   \n", " \r\n \r\n x \r\n",
        "\u00a0nbsp\u00a0 \u3000ideographic\u3000 \u2028line sep\u2029 \u0085nel \u200bzwsp \u2009thin\u202f\u205f\u1680",
        "\ufeffBOM at the start", "mid\ufeffBOM", "mongolian\u180evowel sep", "\x0bvertical\x0ctab form feed\x0b",
        "\x1c\x1d\x1e\x1f file/group/record/unit separators", "\x00", "a\x00b", "\x01\x02\x1b[31mred\x1b[0m\x7f",
        # digits and numbers
        "0", "12", "123", "1234", "12345", "1234567", "3" * 1000, "12345678901234567890123456789",
        "3.14159265358979", "1,234,567.89", "-42 +7 1e10 1E-9 0x1F 0b1010 0o777", "v1.2.3-rc4 and 10.0.0.1:8080",
        "٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ ０１２３４５６７８９ ½ ¾ ² ³ Ⅻ ⅻ ⑳ ㊿", "2024-06-11T12:34:56.789Z",
        "a1b22c333d4444e55555", "9" * 7 + " " + "9" * 8 + " " + "9" * 9,
        # contractions, every case
        "it's IT'S It'S iT's don't DON'T Don'T we're WE'RE We'Re I've I'VE I'vE I'm I'M we'll WE'LL We'Ll I'd I'D",
        "'s's's 't'T 're'RE'rE 've'VE 'm'M 'll'LL'lL 'd'D", "''s '''t ' s 'x 'S' 'T'", "rock'n'roll o'clock y'all",
        "he said 'sup' and 'tis 'twas", "it’s typographic ’s ‘t’", "'ſ 'ſt x'ſ", "'\u0301s 's\u0301",
        "DON'T'S'LL", "123's 4'd", " 's", "\n's", "'", "''", "'s",
        # punctuation runs
        "!!!???...", "-----", "=====>", "...\n\n", "!!!\r\n\r\n", "/*/*/*", "$$$%%%^^^&&&***", "!" * 5000,
        "«»„“”‚‘’‹›—–…·•¡¿", "```python\nx = 1\n```", "<<<>>>|||\\\\\\///", "a...b,,,c;;;d", "?!\n?!\r\n?!",
        "'\"'\"", ".\n.\n.\n", " .\r\n", "()[]{}<>",
        # very long words
        "a" * 5000, "supercalifragilistic" * 200, "Привет" * 500, "你好" * 2000, "안녕하세요" * 300,
        "e\u0301" * 1000, "😀" * 500, "ab" * 3000 + " " + "ba" * 3000, "Donaudampfschifffahrtsgesellschaftskapitän",
        "pneumonoultramicroscopicsilicovolcanoconiosis", "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ" * 50,
        # combining marks, NFC-sensitive text
        "e\u0301", "\u00e9", "e\u0301\u0301\u0301", "\u0301", " \u0301", "\u0301\u0302 start", "a\u0308\u0323 \u1e73",
        "caf\u00e9 cafe\u0301 CAF\u00c9 CAFE\u0301", "\u1100\u1161\u11a8 \uac01", "\u212b \u00c5 A\u030a", "\u2126 \u03a9",
        "\ufb01 \ufb02 ligatures", "\u0958 \u0915\u093c", "\u0344 \u0f73 \u2adc", "Z\u0336\u0335\u0334a\u0337\u0338l\u0321g\u0322o",
        "\u05e9\u05c1\u05b8 \u05e9\u05b8\u05c1", "\u0e01\u0e34\u0e4a \u0e01\u0e4a\u0e34", "n\u0303 \u00f1 N\u0303 \u00d1",
        "e<|endoftext|>\u0301", "\u0301<|im_start|>\u0301",
        # emoji
        "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨 👩🏽‍🤝‍👩🏿", "🇩🇪🇫🇷🇯🇵🇺🇸🇺", "👍🏽👍🏿👋🏻", "1️⃣ #️⃣ *️⃣", "❤️ ❤︎ ☺️ ☺︎",
        "🏴󠁧󠁢󠁳󠁣󠁴󠁿 🏴󠁧󠁢󠁷󠁬󠁳󠁿", "🏳️‍🌈🏳️‍⚧️🏴‍☠️", "a😀b😀c", " 😀 😀  😀\n😀", "\U0010FFFF \U000E0001 \uFFFE \uFFFF \uE000",
        # special-token strings inside text
        "<|endoftext|>", "hello<|endoftext|>world", " <|endoftext|> ", "<|endoftext|><|endoftext|>",
        "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n",
        "<|endoftext", "<|endoftext|", "endoftext|>", "<|ENDOFTEXT|>", "<|begin_of_text|>Once upon a time",
        "<|fim_prefix|>def f():<|fim_suffix|>\n    return 1<|fim_middle|>", "<|endofprompt|>", "<<|endoftext|>>",
        "abc   <|endoftext|>", "<|endoftext|>   abc", "\n<|endoftext|>\n", "<|im_start|><|im_end|><|endoftext|>",
        "x<|im_start|>y<|begin_of_text|>z<|endofprompt|>w", "<|end<|endoftext|>oftext|>", "'s<|endoftext|>'s",
        "123<|endoftext|>456", "😀<|endoftext|>😀",
        # JSON-escape-heavy text
        "quote \" backslash \\ slash / tab\tnewline\n", "\\u0041 is not an escape here", "{\"text\": \"inner\"}",
    ]
    raw = [
        b"a\xff b", b"\x80", b"\xbf\x80", b"\xc3", b"abc\xe2\x82", b"\xe2\x82\xac\xe2\x82", b"\xf0\x9f\x98",
        b"\xf0\x9f\x98a", b"\xf0\x9f\x98\x80\xf0\x9f", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\x80", b"\xf0\x80\x80\x80",
        b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\xfe\xff",
        b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80", b"caf\xe9", b"\xe9t\xe9 \xe0 la plage",
        b"\xe0\xa0", b"text\xc2", b" \xff\xff\xff ", b"<|endof\xfftext|>", b"\xff<|endoftext|>\xff",
        b"e\xcc", b"e\xcc\x81\xcc", b"   \xff   \n\xfe\n", b"\xef\xbf\xbd real U+FFFD", b"12\xff34\xff567",
        b"it\xff's", b"\xe4\xbd\xa0\xe5\xa5", b"\xe4\xbd\xa0\xe5\xa5\xbd\xe4", b"\x80" * 300,
        b"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91", b"\xc3\xa9\xcc\xff",
    ]
    return [d.encode("utf-8") for d in docs] + raw


def random_doc(rng, fragments):
    kind = rng.random()
    seps = [" ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", " \n", "   \n  ", "\u00a0", ""]
    parts = []
    if kind < 0.45:  # sentences with varied separators
        for _ in range(rng.randint(1, 12)):
            s = rng.choice(TEST_SENTENCES)
            r = rng.random()
            s = s.upper() if r < 0.08 else s.lower() if r < 0.16 else unicodedata.normalize("NFD", s) if r < 0.24 else s
            parts += [s, rng.choice(seps)]
    elif kind < 0.75:  # character soup from many blocks
        for _ in range(rng.randint(1, 200)):
            lo, hi = rng.choice(RANGES)
            parts.append(chr(rng.randint(lo, hi)))
            if rng.random() < 0.15:
                parts.append(rng.choice(seps))
    else:  # edge fragments glued together
        for _ in range(rng.randint(2, 10)):
            parts += [rng.choice(fragments), rng.choice(seps)]
    text = "".join(parts).encode("utf-8")
    if rng.random() < 0.05:  # a few random documents with invalid bytes spliced in
        i = rng.randint(0, len(text))
        text = text[:i] + rng.choice([b"\xff", b"\x80", b"\xe2\x82", b"\xf0\x9f", b"\xc0"]) + text[i:]
    return text


def make_corpus():
    rng = random.Random(SEED)
    docs = edge_cases()
    fragments = [d.decode("utf-8", "replace") for d in docs if len(d) < 200]
    docs += [random_doc(rng, fragments) for _ in range(1500)]
    return docs


def jsonl_line(i, raw, rng):
    """One JSONL record for the raw document bytes: invalid UTF-8 bytes go into the line as they are
    (JSON cannot escape them); some records are ASCII-escaped (\\uXXXX, surrogate pairs), some carry
    other fields before and after "text", including a nested "text" decoy."""
    s = raw.decode("utf-8", "surrogateescape")  # invalid bytes -> U+DC80..U+DCFF, written back raw below
    ascii_escape = rng.random() < 0.2 and not any(0xDC80 <= ord(c) <= 0xDCFF for c in s)
    text_json = json.dumps(s, ensure_ascii=ascii_escape)
    r = rng.random()
    if r < 0.1:
        line = f'{{"id": {i}, "meta": {{"text": "decoy", "n": [1, 2]}}, "text": {text_json}, "source": "test"}}'
    elif r < 0.2:
        line = f'{{"text": {text_json}, "id": "d{i}"}}'
    else:
        line = f'{{"id": {i}, "text": {text_json}}}'
    return line.encode("utf-8", "surrogateescape") + b"\n"


# --------------------------------------------------------------------------------------------
# Running the tool.

def run_tool(tool, args, what):
    t0 = time.perf_counter()
    try:
        p = subprocess.run([tool] + args, capture_output=True)
    except OSError as e:
        fail(f"{what}: cannot run {tool}: {e}")
        return None, 0.0
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        fail(f"{what}: {os.path.basename(tool)} {' '.join(args)} exited {p.returncode}: "
             f"{p.stderr.decode('utf-8', 'replace')[-800:].rstrip()}")
        return None, dt
    return p.stdout, dt


def parse_ids(out, n_docs, what):
    lines = out.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != n_docs:
        fail(f"{what}: the tool printed {len(lines)} lines for {n_docs} documents")
        return None
    try:
        return [[int(x) for x in ln.split()] for ln in lines]
    except ValueError as e:
        fail(f"{what}: unparsable id line: {e}")
        return None


def parse_decoded(out, n_docs, what):
    lines = out.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != n_docs:
        fail(f"{what}: --decode printed {len(lines)} lines for {n_docs} documents")
        return None
    texts = []
    for k, ln in enumerate(lines):
        try:
            t = json.loads(ln.decode("utf-8", "surrogateescape"))["text"]
        except (ValueError, KeyError, TypeError) as e:
            fail(f"{what}: --decode line {k + 1} is not a JSON record with a text field ({e}): {ln[:200]!r}")
            return None
        try:
            texts.append(t.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            texts.append(t.encode("utf-8", "surrogatepass"))
    return texts


# --------------------------------------------------------------------------------------------
# References and comparison.

class HFRef:
    def __init__(self, path, with_added):
        d = json.load(open(path, encoding="utf-8"))
        self.added = {t["id"]: t["content"].encode("utf-8") for t in d["added_tokens"]}
        self.vocab = {i: t for t, i in d["model"]["vocab"].items()}
        if not with_added:
            d["added_tokens"] = []
            self.added = {}
        self.tok = Tokenizer.from_str(json.dumps(d))
        self.nfc = (d.get("normalizer") or {}).get("type") == "NFC"

    def encode(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def token_bytes(self, i):
        if i in self.added:
            return self.added[i]
        t = self.vocab.get(i)
        return None if t is None else token_bytes(t)


class TiktokenRef:
    def __init__(self, path, pattern, specials):
        self.enc = tiktoken.Encoding("bellows-fixture", pat_str=pattern,
                                     mergeable_ranks=tiktoken.load.load_tiktoken_bpe(path), special_tokens=specials)
        self.specials = bool(specials)
        self.nfc = False

    def encode(self, text):
        return self.enc.encode(text, allowed_special="all") if self.specials else self.enc.encode_ordinary(text)

    def token_bytes(self, i):
        try:
            return self.enc.decode_single_token_bytes(i)
        except (KeyError, ValueError, OverflowError):
            return None


def show_tokens(ref, ids):
    return " ".join(f"{i}={ref.token_bytes(i)!r}" for i in ids)


def compare(case, ref, expected_texts, ours, theirs):
    """Counts the documents whose ids differ; prints the first few with the first differing
    position, the ids and token bytes there, and the text around it."""
    bad = 0
    for k, (text, a, b) in enumerate(zip(expected_texts, ours, theirs)):
        if a == b:
            continue
        bad += 1
        if bad > 5:
            continue
        pos = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
        before = b"".join(ref.token_bytes(i) or b"?" for i in b[:pos])
        after = b"".join(ref.token_bytes(i) or b"?" for i in b[pos:pos + 8])
        fail(f"{case}: doc {k} ({len(text)} chars {text[:60]!r}{'...' if len(text) > 60 else ''}): "
             f"first difference at token {pos} of {len(a)} ours / {len(b)} reference\n"
             f"    text around it: {before[-40:]!r} <HERE> {after[:40]!r}\n"
             f"    ours:      {show_tokens(ref, a[pos:pos + 6])}\n"
             f"    reference: {show_tokens(ref, b[pos:pos + 6])}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tool")
    ap.add_argument("fixtures")
    ap.add_argument("workdir", nargs="?")
    ap.add_argument("--only", default="", help="comma-separated case names or prefixes")
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="check_tokenizer_exact.")
    os.makedirs(workdir, exist_ok=True)
    fx = args.fixtures

    raws = make_corpus()
    texts = [r.decode("utf-8", "replace") for r in raws]
    corpus = os.path.join(workdir, "corpus.jsonl")
    rng = random.Random(SEED + 1)
    with open(corpus, "wb") as f:
        for i, raw in enumerate(raws):
            f.write(jsonl_line(i, raw, rng))
    n_invalid = sum(1 for r, t in zip(raws, texts) if t.encode("utf-8") != r)
    print(f"corpus: {len(raws)} documents, {os.path.getsize(corpus)} bytes of JSONL, "
          f"{n_invalid} with invalid UTF-8, {sum(1 for t in texts if any(s in t for s in SPECIAL_STRINGS))} "
          f"with special-token strings")

    tk = os.path.join(fx, "llama3.tiktoken")
    cases = []  # (name, tool args, reference factory, description)
    for flavour in ("gpt2", "llama3", "qwen2"):
        path = os.path.join(fx, flavour, "tokenizer.json")
        cases.append((f"{flavour}/special", ["--tokenizer", path, "--allow-special"],
                      lambda p=path: HFRef(p, True), f"HF tokenizers {flavour}/tokenizer.json, --allow-special"))
        cases.append((f"{flavour}/plain", ["--tokenizer", path],
                      lambda p=path: HFRef(p, False), f"HF tokenizers {flavour}/tokenizer.json without its added tokens"))
    cases.append(("tiktoken-cl100k/plain", ["--tokenizer", tk, "--pattern", "cl100k"],
                  lambda: TiktokenRef(tk, TIKTOKEN_PATTERNS["cl100k"], {}), "tiktoken encode_ordinary, cl100k pattern"))
    special_args = [a for t, i in CL100K_SPECIALS.items() for a in ("--special-token", f"{t}={i}")]
    cases.append(("tiktoken-cl100k/special", ["--tokenizer", tk, "--pattern", "cl100k", "--allow-special"] + special_args,
                  lambda: TiktokenRef(tk, TIKTOKEN_PATTERNS["cl100k"], CL100K_SPECIALS),
                  "tiktoken encode(allowed_special='all'), cl100k pattern and specials"))
    for name in ("gpt2", "o200k"):
        cases.append((f"tiktoken-{name}/plain", ["--tokenizer", tk, "--pattern", name],
                      lambda n=name: TiktokenRef(tk, TIKTOKEN_PATTERNS[n], {}), f"tiktoken encode_ordinary, {name} pattern"))
    cases.append(("tiktoken-regex/plain", ["--tokenizer", tk, "--pattern", QWEN2_PATTERN],
                  lambda: TiktokenRef(tk, QWEN2_PATTERN, {}), "tiktoken encode_ordinary, Qwen2's regex as --pattern"))
    if args.only:
        wanted = args.only.split(",")
        cases = [c for c in cases if any(c[0] == w or c[0].startswith(w) for w in wanted)]
        if not cases:
            fail(f"--only {args.only}: no such case")

    total_bad = 0
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    for name, targs, make_ref, desc in cases:
        ref = make_ref()
        t0 = time.perf_counter()
        theirs = [ref.encode(t) for t in texts]
        t_ref = time.perf_counter() - t0
        out, t_ours = run_tool(args.tool, targs + ["--encode", corpus], f"encode {name}")
        ours = parse_ids(out, len(texts), f"encode {name}") if out is not None else None
        if ours is None:
            total_bad += 1
            continue
        bad = compare(f"encode {name}", ref, texts, ours, theirs)
        total_bad += bad
        print(f"encode {name}: {len(texts)} documents, {bad} mismatches vs {desc}")
        print(f"time {name}: ours {t_ours:.2f} s (whole process, loading included), reference {t_ref:.2f} s "
              f"(one thread), {mb:.2f} MB of text")

        # decode(encode(x)) == x, byte for byte, from the tool's own ids.
        ids_path = os.path.join(workdir, name.replace("/", "_") + ".ids")
        with open(ids_path, "wb") as f:
            f.write(out)
        dout, t_dec = run_tool(args.tool, targs + ["--decode", ids_path], f"decode {name}")
        decoded = parse_decoded(dout, len(texts), f"decode {name}") if dout is not None else None
        if decoded is None:
            total_bad += 1
            continue
        dbad = 0
        for k, (text, got) in enumerate(zip(texts, decoded)):
            want = (unicodedata.normalize("NFC", text) if ref.nfc else text).encode("utf-8")
            if got != want:
                dbad += 1
                if dbad <= 5:
                    pos = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]), min(len(got), len(want)))
                    fail(f"decode {name}: doc {k}: decode(encode(x)) != x{' (NFC)' if ref.nfc else ''}: first byte "
                         f"difference at {pos} of {len(got)} decoded / {len(want)} expected: "
                         f"{got[max(0, pos - 20):pos + 20]!r} vs {want[max(0, pos - 20):pos + 20]!r}")
        total_bad += dbad
        print(f"decode {name}: {len(texts)} documents, {dbad} mismatches (decode(encode(x)) == x byte for byte"
              f"{', x NFC-normalized' if ref.nfc else ''}); decode took {t_dec:.2f} s")

    print(f"check_tokenizer_exact: {len(cases)} cases, {total_bad} mismatches in all")
    if failures or total_bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
