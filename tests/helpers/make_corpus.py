#!/usr/bin/env python3
"""Writes a small, reproducible test corpus for curate-dedup, and a manifest of what was planted.

The documents are English prose of ~170-450 words composed from word lists by a small grammar,
so that each one passes the Gopher, C4 and FineWeb quality rules with their default thresholds:
paragraphs of 3-6 full sentences ending in a period, plenty of stop words, no repeated lines,
varied wording (no n-gram repeats much). Planted among them, always after their original:
  exact   verbatim copies of an earlier document under a new id,
  near    copies with a few consecutive words replaced (3 by default; word 5-gram Jaccard 0.94-0.97),
  pii     documents that mention e-mail addresses and phone numbers,
  german  documents in German (CLD2 says "de").
Everything comes from --seed alone (Python's random.Random), so a run is reproducible.

Usage:
  make_corpus.py [options] OUT
    --format jsonl (default), --files 1: OUT is the JSONL file written.
    --format jsonl, --files K > 1:       OUT is a directory; part-000.jsonl ... part-(K-1).jsonl
                                         hold consecutive runs of documents (input order =
                                         sorted file names, then lines).
    --format text:                       OUT is a directory; one file per document,
                                         doc-0000.txt ... (the id curate-dedup gives it is the path).
  --manifest PATH writes JSON:
    {"docs": [{"id", "kind", "of", "jaccard", "file", "line", "pii": {"email": n, "phone": n}}...]
              in input order ("of": the original of a copy; "jaccard": word 5-gram, near copies),
     "exact": {copy_id: original_id}, "near": {copy_id: original_id},
     "pii": {id: {"email": n, "phone": n}}, "german": [ids]}
  where "file" is relative to OUT's directory (jsonl, one file) or to OUT (directory layouts), and
  ids of text-format documents are given as OUT/doc-NNNN.txt as passed on the command line.
"""

import argparse
import json
import os
import random
import sys

NOUNS = """
architect baker biologist carpenter chemist climber director editor engineer farmer fisherman
gardener geologist historian journalist librarian mechanic musician navigator painter pharmacist
photographer pilot potter researcher sailor scientist sculptor shepherd surveyor teacher translator
traveller weaver writer committee council village museum orchestra harbour railway factory
laboratory library market monastery observatory school theatre university vineyard workshop bakery
bridge canal castle cathedral garden lighthouse mill orchard quarry reservoir tunnel windmill
""".split()

THINGS = """
letter manuscript map report ledger diary recipe painting photograph sketch instrument telescope
compass lantern clock engine harvest bridge plan proposal budget survey experiment collection
archive catalogue exhibition festival journey expedition voyage lecture concert performance
treaty agreement fence roof wall boat cart sail net loom kiln furnace barrel basket blanket
cabinet chair desk ladder mirror needle pencil quilt rope saddle shovel table wagon window
""".split()

ADJ = """
ancient bright careful clever cold quiet curious distant dusty early elegant enormous faded famous
fragile generous gentle golden heavy honest humble modest narrow patient peaceful polished private
proud rare remote rough rustic sharp shy silent simple slender small smooth solid sturdy tall tidy
tired unusual valuable vivid warm weathered wide wooden young yellow crowded hidden brittle shiny
""".split()

# (past, present 3rd person, base)
VERBS = [
    ("admired", "admires", "admire"), ("borrowed", "borrows", "borrow"), ("built", "builds", "build"),
    ("carried", "carries", "carry"), ("cleaned", "cleans", "clean"), ("collected", "collects", "collect"),
    ("described", "describes", "describe"), ("designed", "designs", "design"),
    ("discovered", "discovers", "discover"), ("examined", "examines", "examine"),
    ("finished", "finishes", "finish"), ("found", "finds", "find"), ("guarded", "guards", "guard"),
    ("improved", "improves", "improve"), ("inspected", "inspects", "inspect"),
    ("measured", "measures", "measure"), ("mended", "mends", "mend"), ("moved", "moves", "move"),
    ("noticed", "notices", "notice"), ("opened", "opens", "open"), ("painted", "paints", "paint"),
    ("planned", "plans", "plan"), ("polished", "polishes", "polish"), ("prepared", "prepares", "prepare"),
    ("protected", "protects", "protect"), ("questioned", "questions", "question"),
    ("recorded", "records", "record"), ("repaired", "repairs", "repair"), ("restored", "restores", "restore"),
    ("sold", "sells", "sell"), ("studied", "studies", "study"), ("tested", "tests", "test"),
    ("traded", "trades", "trade"), ("visited", "visits", "visit"), ("wrapped", "wraps", "wrap"),
    ("weighed", "weighs", "weigh"), ("praised", "praises", "praise"), ("copied", "copies", "copy"),
    ("painted over", "paints over", "paint over"), ("looked after", "looks after", "look after"),
]

PLACES = """
valley river coast island forest desert mountain plain village city harbour market square meadow
hillside lakeside riverbank countryside border province capital suburb quarter courtyard cellar
attic hallway kitchen garden orchard station crossing wharf pier marsh moor glen ridge cliff bay
""".split()

NAMES = """
Anna Bernard Clara Daniel Elena Felix Greta Hugo Irene Jonas Karin Lukas Maria Nora Oscar Paula
Quentin Rosa Samuel Tilda Ursula Victor Wendy Xavier Yusuf Zara Agnes Boris Cecile Dmitri
""".split()

ADVERBS = """
carefully quickly slowly quietly patiently eagerly gladly gently proudly reluctantly suddenly
steadily openly firmly happily honestly calmly briskly cheerfully nervously thoroughly warmly
""".split()

TIMES = [
    "in the spring", "during the winter", "before the harvest", "after the storm", "every morning",
    "late in the evening", "at the end of the summer", "on a rainy afternoon", "in the autumn",
    "early the next day", "during the long drought", "after the market closed", "before sunrise",
    "on the first day of the month", "later that week", "for many years", "in the following season",
]

OPENERS = ["However", "Meanwhile", "Later", "Soon", "Eventually", "Afterwards", "Still", "Even so",
           "At first", "In the end", "By then", "For a while", "Nevertheless", "Fortunately"]

EVAL = ["clear", "likely", "true", "obvious", "surprising", "remarkable", "fortunate", "strange",
        "possible", "certain", "evident", "curious"]

MODALS = ["would", "could", "should", "might", "will", "must", "can"]

CONJ = ["because", "although", "while", "since", "so that", "even though", "until", "before", "after"]

GERMAN = [
    "Die Stadt liegt an einem breiten Fluss und ist von alten Wäldern umgeben.",
    "Im Sommer kommen viele Besucher, um die historischen Gebäude zu besichtigen.",
    "Der Bürgermeister hat angekündigt, dass die Brücke im nächsten Jahr erneuert wird.",
    "Viele Familien verbringen ihre Wochenenden am See oder in den Bergen.",
    "In der kleinen Bäckerei am Marktplatz gibt es jeden Morgen frisches Brot.",
    "Die Schule wurde vor mehr als hundert Jahren gegründet und hat einen guten Ruf.",
    "Nach dem langen Winter freuen sich alle auf die ersten warmen Tage.",
    "Der Bahnhof ist nur wenige Minuten vom Zentrum entfernt und gut zu erreichen.",
    "Auf dem Wochenmarkt verkaufen die Bauern aus der Umgebung Obst und Gemüse.",
    "Das Museum zeigt eine große Sammlung von Gemälden und alten Handschriften.",
    "Im Herbst färben sich die Blätter der Bäume gelb, rot und braun.",
    "Die Bibliothek bleibt wegen der Renovierung bis zum Ende des Monats geschlossen.",
    "Mein Großvater erzählte oft Geschichten aus seiner Kindheit auf dem Land.",
    "Wir haben beschlossen, die Reise wegen des schlechten Wetters zu verschieben.",
    "Die Wissenschaftler untersuchen seit Jahren die Veränderungen des Klimas in der Region.",
    "Am Abend trafen sich die Nachbarn im Garten und sprachen über die Ernte.",
    "Der alte Leuchtturm wurde restauriert und ist jetzt wieder für Besucher geöffnet.",
    "Die Kinder spielten den ganzen Nachmittag im Hof, bis es dunkel wurde.",
    "Für die meisten Menschen ist eine gute Ausbildung der Schlüssel zum Erfolg.",
    "Das Orchester probt zweimal in der Woche für das große Konzert im Dezember.",
    "Die Straßen waren nach dem starken Regen überflutet und kaum befahrbar.",
    "Sie hat ihr Studium abgeschlossen und arbeitet nun als Ärztin in einem Krankenhaus.",
    "Der Verein sucht noch freiwillige Helfer für das Sommerfest im Juli.",
    "Früher war das Dorf vor allem für seine Weinberge und seine Mühlen bekannt.",
    "Die Regierung plant, mehr Geld in den öffentlichen Verkehr zu investieren.",
    "Unsere Nachbarin züchtet seltene Rosen und gewinnt damit jedes Jahr einen Preis.",
    "Während der Ferien ist die Altstadt voller Touristen aus aller Welt.",
    "Der Tischler hat aus dem alten Holz einen wunderschönen Schrank gebaut.",
    "Niemand wusste genau, warum das Schiff an diesem Tag nicht ausgelaufen war.",
    "Die Zeitung berichtete ausführlich über die Eröffnung des neuen Theaters.",
]


def article(phrase):
    """'a' before a vowel becomes 'an', 'an' before a consonant 'a'."""
    det, _, rest = phrase.partition(" ")
    if det in ("a", "an"):
        det = "an" if rest[:1] in ("a", "e", "i", "o", "u") else "a"
    return f"{det} {rest}"


class Prose:
    """A grammar that writes varied English sentences; one instance per document."""

    def __init__(self, rng):
        self.r = rng

    def pick(self, items):
        return self.r.choice(items)

    def np(self, adj=True):
        det = self.pick(["the", "a", "one", "that", "their", "our", "every"])
        noun = self.pick(NOUNS + THINGS)
        if adj and self.r.random() < 0.6:
            return article(f"{det} {self.pick(ADJ)} {noun}")
        return article(f"{det} {noun}")

    def obj(self):
        det = self.pick(["the", "a", "an old", "their", "his", "her", "a new", "the only"])
        return article(f"{det} {self.pick(ADJ)} {self.pick(THINGS)}")

    def place(self):
        return article(f"{self.pick(['the', 'a', 'that', 'a nearby', 'the far'])} {self.pick(PLACES)}")

    def sentence(self):
        v = self.pick(VERBS)
        v2 = self.pick(VERBS)
        t = self.r.randrange(9)
        if t == 0:
            s = f"{self.np()} {v[0]} {self.obj()} near {self.place()} {self.pick(TIMES)}"
        elif t == 1:
            s = f"{self.pick(OPENERS)}, {self.np()} {self.pick(MODALS)} {v[2]} {self.obj()} {self.pick(TIMES)}"
        elif t == 2:
            s = (f"{self.pick(NAMES)} said that {self.np(False)} {v[0]} {self.obj()} "
                 f"{self.pick(CONJ)} {self.np()} {v2[0]} it {self.pick(ADVERBS)}")
        elif t == 3:
            s = (f"When {self.np()} {v[0]} {self.obj()} in {self.place()}, "
                 f"{self.np(False)} {v2[0]} {self.obj()} {self.pick(ADVERBS)}")
        elif t == 4:
            s = (f"{self.np()} of {self.place()} {v[1]} {self.obj()} and "
                 f"{self.pick(ADVERBS)} {v2[1]} {self.obj()}")
        elif t == 5:
            s = f"It is {self.pick(EVAL)} that {self.np()} {v[1]} {self.obj()} {self.pick(TIMES)}"
        elif t == 6:
            s = (f"{self.pick(NAMES)} and {self.pick(NAMES)} {self.pick(ADVERBS)} {v[0]} {self.obj()} "
                 f"with {self.np()} from {self.place()}")
        elif t == 7:
            s = (f"Nobody knew why {self.np()} had {v[0]} {self.obj()}, but {self.np(False)} "
                 f"{v2[0]} it {self.pick(TIMES)}")
        else:
            s = (f"{self.pick(TIMES).capitalize()}, {self.pick(NAMES)} {v[0]} {self.obj()} "
                 f"to have it {v2[0]} by {self.np()}")
        s = s[0].upper() + s[1:]
        return s + "."

    def document(self, min_words=150, max_words=400):
        target = self.r.randint(min_words + 20, max_words - 40)
        paras, words = [], 0
        while words < target:
            sents = [self.sentence() for _ in range(self.r.randint(3, 6))]
            p = " ".join(sents)
            paras.append(p)
            words += len(p.split())
        return "\n\n".join(paras)


def near_copy(rng, text, changes):
    """The text with a run of `changes` consecutive words, somewhere in its middle, replaced by others
    (an edit of one phrase: it breaks only changes + 4 of the word 5-grams)."""
    words = text.split(" ")
    while True:  # not across a paragraph break ("word.\n\nWord" is one item here)
        start = rng.randrange(len(words) // 4, len(words) // 2)
        if not any("\n" in w for w in words[start:start + changes]):
            break
    for i in range(start, start + changes):
        w = words[i]
        core = w.rstrip(".,")
        new = rng.choice(ADJ + THINGS)
        while new == core.lower():
            new = rng.choice(ADJ + THINGS)
        if core[:1].isupper():
            new = new.capitalize()
        words[i] = new + w[len(core):]  # keeps the punctuation (and paragraph breaks after it)
    return " ".join(words)


def word5_jaccard(a, b):
    """Jaccard similarity of the word 5-gram sets (lower-cased, punctuation stripped), for the manifest."""
    def grams(t):
        w = [x.strip(".,").lower() for x in t.split()]
        return {tuple(w[i:i + 5]) for i in range(len(w) - 4)}
    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def pii_sentences(rng, k):
    first = rng.choice(NAMES).lower()
    last = rng.choice(["miller", "schmidt", "okafor", "larsen", "moreau", "tanaka", "silva"])
    email = f"{first}.{last}{k}@example-mail.org"
    area = rng.randint(201, 989)
    phone = f"({area}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    phone2 = f"+44 20 7946 {rng.randint(1000, 9999)}"
    return ([f"For the booking, write to {email} or call the office at {phone} on a weekday.",
             f"The overseas partners can be reached at {phone2} during business hours."],
            {"email": 1, "phone": 2})


def german_doc(rng):
    sents = rng.sample(GERMAN, 14)
    return "\n\n".join(" ".join(sents[i:i + 4]) for i in range(0, len(sents), 4))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--docs", type=int, default=40, help="distinct English documents")
    ap.add_argument("--exact", type=int, default=3, help="planted exact copies")
    ap.add_argument("--near", type=int, default=3, help="planted near copies")
    ap.add_argument("--near-changes", type=int, default=3, help="consecutive words replaced in a near copy")
    ap.add_argument("--pii", type=int, default=2, help="of the distinct documents, how many carry PII")
    ap.add_argument("--german", type=int, default=2, help="German documents")
    ap.add_argument("--files", type=int, default=1)
    ap.add_argument("--format", choices=["jsonl", "text"], default="jsonl")
    ap.add_argument("--id-prefix", default="doc")
    ap.add_argument("--manifest")
    a = ap.parse_args()
    if a.exact + a.near > a.docs or a.pii > a.docs or a.files < 1:
        ap.error("--exact + --near and --pii must not exceed --docs; --files must be >= 1")

    rng = random.Random(a.seed)
    docs = []  # dicts: id, text, kind, of, pii
    for i in range(a.docs):
        docs.append({"id": f"{a.id_prefix}-{i:05d}", "text": Prose(rng).document(), "kind": "base"})
    for i in rng.sample(range(a.docs), a.pii):
        extra, counts = pii_sentences(rng, i)
        paras = docs[i]["text"].split("\n\n")  # (every document has 2+ paragraphs)
        paras[1] += " " + extra[0]
        paras[-1] += " " + extra[1]
        docs[i]["text"] = "\n\n".join(paras)
        docs[i]["kind"] = "pii"
        docs[i]["pii"] = counts
    for i in range(a.german):
        docs.append({"id": f"{a.id_prefix}-de-{i:02d}", "text": german_doc(rng), "kind": "german"})

    # Copies go after their original: the kept document of a group is the first in input order.
    # Near copies are made of the longer documents: with 3 consecutive words replaced in 250+ words
    # the word 5-gram Jaccard stays above 0.94, where the default LSH (9 bands x 13 rows) finds a
    # pair with probability > 0.997 (and the fixed seeds make the outcome reproducible).
    bases = [d for d in docs if d["kind"] == "base"]
    longer = [d for d in bases if len(d["text"].split()) >= 250]
    if len(longer) < a.near:
        ap.error(f"only {len(longer)} documents of 250+ words for {a.near} near copies: raise --docs")
    near_orig = rng.sample(longer, a.near)
    exact_orig = rng.sample([d for d in bases if d not in near_orig], a.exact)
    for k, orig in enumerate(exact_orig + near_orig):
        exact = k < a.exact
        copy = {"id": f"{orig['id']}-{'copy' if exact else 'near'}", "of": orig["id"],
                "kind": "exact" if exact else "near",
                "text": orig["text"] if exact else near_copy(rng, orig["text"], a.near_changes)}
        if not exact:
            copy["jaccard"] = round(word5_jaccard(orig["text"], copy["text"]), 4)
        pos = docs.index(orig)
        docs.insert(rng.randint(pos + 1, len(docs)), copy)

    # Layout.
    if a.format == "text":
        os.makedirs(a.out, exist_ok=True)
        width = max(4, len(str(len(docs))))
        for n, d in enumerate(docs):
            name = f"doc-{n:0{width}d}.txt"
            d["file"], d["line"] = name, 0
            d["name_id"] = os.path.join(a.out, name)
            with open(os.path.join(a.out, name), "w", encoding="utf-8") as f:
                f.write(d["text"] + "\n")
        idmap = {d["id"]: d["name_id"] for d in docs}
        for d in docs:
            d["id"] = idmap[d["id"]]
            if "of" in d:
                d["of"] = idmap[d["of"]]
    else:
        if a.files == 1:
            chunks = [(os.path.basename(a.out), a.out, docs)]
        else:
            os.makedirs(a.out, exist_ok=True)
            per = -(-len(docs) // a.files)
            chunks = [(f"part-{k:03d}.jsonl", os.path.join(a.out, f"part-{k:03d}.jsonl"), docs[k * per:(k + 1) * per])
                      for k in range(a.files)]
        for name, path, part in chunks:
            with open(path, "w", encoding="utf-8") as f:
                for line, d in enumerate(part, 1):
                    d["file"], d["line"] = name, line
                    f.write(json.dumps({"id": d["id"], "text": d["text"], "url": f"https://example.org/{d['id']}"},
                                       ensure_ascii=False) + "\n")

    if a.manifest:
        m = {"docs": [{k: d[k] for k in ("id", "kind", "of", "jaccard", "file", "line", "pii")
                          if k in d} for d in docs],
             "exact": {d["id"]: d["of"] for d in docs if d["kind"] == "exact"},
             "near": {d["id"]: d["of"] for d in docs if d["kind"] == "near"},
             "pii": {d["id"]: d["pii"] for d in docs if d["kind"] == "pii"},
             "german": [d["id"] for d in docs if d["kind"] == "german"]}
        with open(a.manifest, "w", encoding="utf-8") as f:
            json.dump(m, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
