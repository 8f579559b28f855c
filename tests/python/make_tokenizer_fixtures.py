"""Reference tokenizers for tokenize-pack's exactness tests, built offline (nothing is downloaded).

Trains three byte-level BPE tokenizers with HF `tokenizers` (PyPI) on a multilingual text that this
script generates (fixed seed): English, German, French, Russian, Greek, Arabic, Hindi, Chinese,
Japanese, Korean, emoji (with ZWJ sequences, skin tones, flags), combining marks, code, numbers.
Each is saved as a tokenizer.json:

  gpt2/tokenizer.json     GPT-2 style: ByteLevel pre-tokenizer with use_regex=true (the GPT-2
                          regex), add_prefix_space=false; merges written in the LEGACY "a b" form
  llama3/tokenizer.json   Llama-3 / cl100k style: Sequence[Split{Regex: cl100k, Isolated},
                          ByteLevel{use_regex: false}], model ignore_merges=true, Llama-3's
                          post-processor (Sequence[ByteLevel, TemplateProcessing with BOS]);
                          merges in the pair form [["a","b"], ...] (tokenizers >= 0.20)
  qwen2/tokenizer.json    Qwen2 style: NFC normalizer, Split{Regex: Qwen2's pattern (single
                          digits), Isolated} + ByteLevel{use_regex: false}, ignore_merges=false;
                          pair-form merges

Added special tokens: <|endoftext|> and <|im_start|> in all three, <|begin_of_text|> in llama3,
<|im_end|> in qwen2 (all special=true, normalized=false, as the trainer makes them).

  llama3.tiktoken         llama3's vocabulary as a tiktoken rank file: base64(token bytes) rank,
                          sorted by rank; the 256 single bytes and then the merged tokens in merge
                          order, ranks dense from 0 (rank = llama3 id - number of specials before
                          the byte alphabet). With ignore_merges=true, HF's BPE and tiktoken's
                          rank-based merging give the same pieces; the script checks that
                          tiktoken.Encoding(pat_str=cl100k, mergeable_ranks=<the file>) loads it
                          and reproduces llama3's ids (shifted) on training documents and on
                          random unseen strings (where the merge order decides).

usage: python make_tokenizer_fixtures.py OUTDIR [--vocab-size N]
Prints one 'ok ...' line per fixture; exits 1 on any failed self-check.
"""
import argparse
import base64
import json
import os
import random
import sys
import time
import unicodedata

# Keep the Rust thread pool small: the machine is shared.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tiktoken caches every file it loads by path, local ones too (in /tmp/data-gym-cache): a rebuilt
# fixture at the same path would be read stale. "" turns the cache off.
os.environ["TIKTOKEN_CACHE_DIR"] = ""

import tiktoken  # noqa: E402
import tiktoken.load  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

SEED = 20240917

# formats.md §5: cl100k_base = Llama 3 pre-tokenization regex (the HF tokenizer.json form).
CL100K_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen2's tokenizer.json Split pattern: as cl100k but digits one at a time.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Sentences per language: the training text is made of these, shuffled and recombined.
TRAIN_SENTENCES = {
    "en": ["The quick brown fox jumps over the lazy dog.", "It's a truth universally acknowledged that we'll need more data.",
           "They're running the training job on 512 GPUs, and it's still slow.", "I've said it before: don't tokenize twice!",
           "What's the loss at step 10,000? About 2.35, I'd guess.", "She'll read the report tomorrow morning at 9:30 AM.",
           "Large language models learn from trillions of tokens of text.", "THE QUICK BROWN FOX; the Quick Brown Fox."],
    "de": ["Der schnelle braune Fuchs springt über den faulen Hund.", "Größere Modelle brauchen mehr Rechenleistung und Geduld.",
           "Die Straße war nass, aber die Bäume blühten schön.", "Übermorgen fährt der Zug um 14:45 Uhr nach München."],
    "fr": ["Le renard brun rapide saute par-dessus le chien paresseux.", "C'est l'été, et les élèves sont déjà en vacances.",
           "Où est la bibliothèque ? Elle est fermée aujourd'hui.", "Il a mangé une crème brûlée très sucrée à Noël."],
    "ru": ["Съешь же ещё этих мягких французских булок, да выпей чаю.", "Большие языковые модели обучаются на огромных корпусах.",
           "В Москве сегодня холодно: минус 15 градусов.", "Привет, как дела? Всё хорошо, спасибо!"],
    "el": ["Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.", "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
           "Καλημέρα σας, τι κάνετε σήμερα;"],
    "ar": ["نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر.", "تتعلم النماذج اللغوية الكبيرة من كميات هائلة من النصوص.",
           "مرحبا بالعالم، كيف حالك اليوم؟"],
    "hi": ["ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।",
           "बड़े भाषा मॉडल बहुत सारे पाठ से सीखते हैं।", "नमस्ते, आप कैसे हैं?"],
    "zh": ["我能吞下玻璃而不伤身体。", "大型语言模型从海量文本中学习。", "今天天气很好，我们去公园散步吧！", "北京是中华人民共和国的首都。"],
    "ja": ["いろはにほへと ちりぬるを わかよたれそ つねならむ", "私はガラスを食べられます。それは私を傷つけません。",
           "東京タワーは日本の有名な観光地です。"],
    "ko": ["다람쥐 헌 쳇바퀴에 타고파.", "대규모 언어 모델은 방대한 텍스트에서 학습합니다.", "안녕하세요, 만나서 반갑습니다!"],
    "emoji": ["I love it 😀😀 so much 🎉🎉🎉!", "Family: 👨‍👩‍👧‍👦 and 👩‍❤️‍💋‍👨 together.", "Thumbs 👍🏽 👍🏿 👋🏻 up.",
              "Flags 🇩🇪 🇫🇷 🇯🇵 🇺🇸 everywhere.", "Keycaps 1️⃣ 2️⃣ #️⃣ and hearts ❤️ 💔.", "Rainbow 🏳️‍🌈 pirate 🏴‍☠️."],
    "marks": ["Cafe\u0301 and caf\u00e9 are the same word.", "n\u0303o\u0308 a\u030a Z\u0336a\u0337l\u0338g\u0335o\u0334.",
              "Vietnamese: Tiếng Việt có dấu: ơ ư ặ ẫ ỹ.", "Ångström, naïve, coöperate, résumé."],
    "code": ["def main(argc, argv):\n    return 0\n", "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }\n",
             "if x != None and y >= 3:\n\tprint(f\"{x!r} -> {y:08.3f}\")\n", "#include <vector>\nint main() { return EXIT_SUCCESS; }\n",
             "SELECT id, name FROM users WHERE age > 21 ORDER BY name;\n", "const re = /^[a-z]+\\d*$/gi; // regex\n",
             "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}\n"],
    "numbers": ["Pi is 3.14159265358979323846264338327950288.", "Phone: +1 (555) 123-4567, zip 90210.",
                "In 2024, revenue was $1,234,567.89 (up 12.5%).", "IPv4 192.168.0.1 and IPv6 fe80::1ff:fe23:4567:890a.",
                "0x7FFFFFFF == 2147483647; 1e-9 < 1E+9."],
}


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (formats.md §5)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_DECODER = {c: b for b, c in bytes_to_unicode().items()}


def token_bytes(token):
    """The bytes behind a byte-level vocabulary entry (its characters are bytes_to_unicode images)."""
    return bytes(BYTE_DECODER[c] for c in token)


# Syllables for pseudo-words, so that the vocabulary fills up beyond the fixed sentences.
SYLLABLES = {
    "latin": "ka ri to men sa lo ve ni ber ung ist chen tion ment eau oi qu au ei sch".split(),
    "cyrillic": "ка ри то мен са ло ве ни ть ся ого ние ств про".split(),
    "greek": "κα ρι το με σα λο ει ου ση ται".split(),
    "hangul": "다 람 쥐 헌 쳇 바 퀴 에 타 고 파 한 국 어 습 니".split(),
    "cjk": list("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"),
    "kana": "か き く け こ さ し す せ そ カ キ ク ケ コ ン".split(),
}


def pseudo_word(rng, script):
    w = "".join(rng.choice(SYLLABLES[script]) for _ in range(rng.randint(1, 4)))
    return w.capitalize() if rng.random() < 0.15 else w


def training_docs(rng, n_docs):
    """Multilingual documents: runs of sentences of one or more languages and pseudo-words, with
    varied whitespace (spaces, newlines, tabs, indentation) between them so whitespace tokens get
    merges too."""
    langs = list(TRAIN_SENTENCES)
    seps = [" ", " ", " ", "\n", "\n\n", "  ", "\t", "\r\n", "    "]
    docs = []
    for _ in range(n_docs):
        mix = rng.sample(langs, rng.randint(1, 3))
        script = rng.choice(list(SYLLABLES))
        parts = []
        for _ in range(rng.randint(3, 14)):
            if rng.random() < 0.3:
                joiner = "" if script in ("cjk", "kana") else " "
                parts.append(joiner.join(pseudo_word(rng, script) for _ in range(rng.randint(2, 12))))
            else:
                parts.append(rng.choice(TRAIN_SENTENCES[rng.choice(mix)]))
            parts.append(rng.choice(seps))
        docs.append("".join(parts))
    return docs


def train(kind, docs, vocab_size, specials):
    if kind == "gpt2":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        pattern = CL100K_PATTERN if kind == "llama3" else QWEN2_PATTERN
        tok = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
        if kind == "qwen2":
            tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs, trainer)
    if kind == "llama3":
        bos = specials[0]
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                          special_tokens=[(bos, tok.token_to_id(bos))]),
        ])
    return tok


failures = []


def fail(msg):
    failures.append(msg)
    print("make_tokenizer_fixtures: " + msg, file=sys.stderr)


def save(tok, path, merges_form):
    """Writes tok as tokenizer.json with merges as "a b" strings (legacy) or [a, b] pairs."""
    d = json.loads(tok.to_str())
    merges = d["model"]["merges"]
    pairs = [m.split(" ") if isinstance(m, str) else list(m) for m in merges]
    if any(len(p) != 2 or " " in p[0] or " " in p[1] for p in pairs):
        fail(f"{path}: a merge cannot be written as 'a b'")
    d["model"]["merges"] = [f"{a} {b}" for a, b in pairs] if merges_form == "legacy" else pairs
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False, indent=2)
    return d


def write_tiktoken(d, path, n_special):
    """llama3's vocab as a tiktoken rank file: bytes first, then merged tokens in merge order."""
    vocab = d["model"]["vocab"]
    merges = d["model"]["merges"]
    specials = {t["content"] for t in d["added_tokens"]}
    ranks = {}
    for token, tid in vocab.items():
        if token in specials:
            continue
        ranks[token_bytes(token)] = tid - n_special
    # ranks = merge order: merge i produces the token of rank 256 + i, and every token is made once.
    for i, (a, b) in enumerate(merges):
        if vocab[a + b] - n_special != 256 + i:
            fail(f"merge {i} ({a!r} {b!r}) produces id {vocab[a + b]}, not merge order")
            break
    if sorted(ranks.values()) != list(range(len(ranks))) or len(ranks) != 256 + len(merges):
        fail("llama3 vocabulary ranks are not dense 0..N-1 (256 bytes + merges)")
    if sorted(r for b, r in ranks.items() if len(b) == 1) != list(range(256)):
        fail("the 256 single bytes are not ranks 0..255")
    with open(path, "wb") as f:
        for b, r in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write(base64.b64encode(b) + b" " + str(r).encode() + b"\n")
    return ranks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--vocab-size", type=int, default=3000)
    args = ap.parse_args()
    out = args.outdir
    os.makedirs(out, exist_ok=True)

    rng = random.Random(SEED)
    docs = training_docs(rng, 4000)
    # Every language's sentences at least once, composed and decomposed, so all scripts get merges.
    for sents in TRAIN_SENTENCES.values():
        docs.append("\n".join(sents))
        docs.append("\n".join(unicodedata.normalize("NFD", s) for s in sents))
    print(f"training text: {len(docs)} documents, {sum(len(x.encode()) for x in docs)} bytes "
          f"(tokenizers {tokenizers.__version__}, tiktoken {tiktoken.__version__})")

    flavours = {
        "gpt2": (["<|endoftext|>", "<|im_start|>"], "legacy"),
        "llama3": (["<|begin_of_text|>", "<|endoftext|>", "<|im_start|>"], "pairs"),
        "qwen2": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "pairs"),
    }
    saved = {}
    for kind, (specials, form) in flavours.items():
        t0 = time.perf_counter()
        tok = train(kind, docs, args.vocab_size, specials)
        path = os.path.join(out, kind, "tokenizer.json")
        d = save(tok, path, form)
        saved[kind] = d
        # The saved file must load back and give the in-memory tokenizer's ids.
        back = Tokenizer.from_file(path)
        sample = docs[:200]
        if [e.ids for e in back.encode_batch(sample, add_special_tokens=False)] != \
           [e.ids for e in tok.encode_batch(sample, add_special_tokens=False)]:
            fail(f"{kind}: {path} does not reload to the same tokenizer")
        merges = d["model"]["merges"]
        shown_form = "legacy 'a b'" if isinstance(merges[0], str) else "pair"
        if (form == "legacy") != isinstance(merges[0], str):
            fail(f"{kind}: merges are not in the {form} form")
        if kind == "llama3" and d["model"].get("ignore_merges") is not True:
            fail("llama3: the model lost ignore_merges=true")
        print(f"ok {kind}: {path}: vocab {len(d['model']['vocab'])} + {len(d['added_tokens'])} added, "
              f"{len(merges)} merges ({shown_form} form), ignore_merges={d['model'].get('ignore_merges')}, "
              f"normalizer={(d['normalizer'] or {}).get('type')}, trained in {time.perf_counter() - t0:.1f} s")

    # llama3 -> tiktoken rank file.
    d = saved["llama3"]
    n_special = len(flavours["llama3"][0])
    tk_path = os.path.join(out, "llama3.tiktoken")
    ranks = write_tiktoken(d, tk_path, n_special)
    loaded = tiktoken.load.load_tiktoken_bpe(tk_path)
    if loaded != ranks:
        fail(f"{tk_path}: load_tiktoken_bpe does not read back the ranks written")
    enc = tiktoken.Encoding("bellows-fixture", pat_str=CL100K_PATTERN, mergeable_ranks=loaded,
                            special_tokens={"<|endoftext|>": len(loaded), "<|im_start|>": len(loaded) + 1})
    hf = Tokenizer.from_file(os.path.join(out, "llama3", "tokenizer.json"))
    # Training documents and unseen random strings (where the merge order, not ignore_merges, decides).
    alphabet = ("abcdefghijklmnopqrstuvwxyzABCäöüßéàçабвгдеёжзийклмнопрстуфхцчшщъыьэюяαβγδεζηθ"
                "你好世界大型语言模型文本学习한국어다람쥐かきくカキク  \n\t\r0123456789.,!?'\"-😀👍🏽\u0301")
    sample = rng.sample(docs, 200) + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
                                      for _ in range(1000)]
    bad = 0
    for text in sample:
        want = [i - n_special for i in hf.encode(text, add_special_tokens=False).ids]
        got = enc.encode_ordinary(text)
        if got != want:
            bad += 1
            if bad <= 3:
                fail(f"tiktoken on {tk_path} differs from llama3 tokenizer.json on {text[:60]!r}: {got[:12]} vs {want[:12]}")
        if enc.decode_bytes(got) != text.encode("utf-8"):
            fail(f"tiktoken decode does not round-trip {text[:60]!r}")
    if not bad:
        print(f"ok tiktoken: {tk_path}: {len(loaded)} ranks, loads into tiktoken.Encoding (cl100k pattern) and "
              f"reproduces llama3's ids (minus {n_special}) on {len(sample)} documents (200 training, 1000 random)")
    if failures:
        print(f"make_tokenizer_fixtures: {len(failures)} failure(s)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
