#!/usr/bin/env python3
"""Writes the benchmark corpus for curate-dedup vs datatrove/datasketch: English prose as JSON Lines.

Deterministic: everything comes from --seed (Python's random.Random; no set or dict iteration order,
no clock), so the same --seed and --mb give the same bytes on any machine and Python 3.8+.

Each line is {"id": "doc-0000123", "text": "..."}. The documents, in input order:
  base     English prose written by a grammar with a vocabulary of about two thousand words: an optional
           title line, then paragraphs of 2-8 sentences separated by a blank line; 100-2000 words
           (log-uniform, so most are a few hundred words), with years, percentages, quotes and the
           odd version number. Written to pass the Gopher, C4 and FineWeb rules at their defaults.
  pii      (~8% of base documents) a sentence or two with e-mail addresses, phone numbers, public and
           private IPv4 addresses, and now and then a card number (Luhn-valid).
  low      (~6%) web boilerplate that the quality rules exist for: menus of short lines, repeated
           lines, keyword spam, code with braces, "lorem ipsum" filler, very short notes.
  exact    (~10%) verbatim copies of an earlier document under a new id.
  near     (~10%) copies of an earlier document with small edits: a few words replaced, a sentence
           dropped or added, a title changed, punctuation changed (word 5-gram Jaccard mostly 0.7-0.98).
Copies always come after their original, at a random later position.

Usage:
  make_corpus.py --mb 50 --seed 1 -o corpus.jsonl [--stats stats.json]

--stats writes counts per kind, bytes and words, so the benchmark can report what it ran on.
"""

import argparse
import ipaddress
import json
import math
import random
import sys

# --- vocabulary --------------------------------------------------------------------------------
NOUNS = """
account agreement airport album anchor animal answer apartment apple archive argument army arrival
article artist assembly attempt audience author autumn avenue balance balcony band bank barn basket
battle beach bench bicycle bird blanket board boat bottle boundary branch bread breakfast brick
bridge brother budget building cabin cable cafe calendar camera campaign canal candle canyon
captain card career carpet castle cathedral cattle ceiling cellar century chair chamber champion
chapter character chart chef chemist child choir church circle citizen city classroom clerk cliff
climate clinic clock cloud coach coast collection college colony column committee community company
competition concert conference contract corner cottage council country county courtyard cousin
craft crew crop crowd culture customer dam daughter debate decade delegation department desert
design desk detective diary dinner director discovery district doctor document doorway drawing
driver drum editor election electricity embassy emperor engine engineer entrance envelope estate
evening exhibition expedition experiment explorer factory family farm farmer feast fence ferry
festival field figure film fisherman flag fleet flood floor flower forest fortress fountain frame
friend frontier furnace gallery garage garden gate generation glacier government governor grain
grandmother guest guide hall harbour harvest headline highway hill historian holiday horizon
horse hospital hotel household hunter island journal journey judge jury kettle kingdom kitchen
laboratory ladder lake lamp landlord landscape language lantern lawyer lecture ledger letter
library lighthouse list lock machine magazine manager manuscript map market meadow meeting
merchant message method mill miner minister mirror monastery monument mountain museum musician
neighbour network newspaper notebook novel nurse ocean office officer orchard orchestra painter
painting palace pamphlet parish passenger pasture pattern pavement peasant pharmacy photograph
physician pilgrim pilot pioneer plantation platform poem poet port portrait potter priest printer
prison professor programme project property province publisher quarry queen railway ranch reader
recipe record reef region report republic reservoir restaurant river road roof sailor scholar
school scientist sculptor season secretary senate servant settlement shelter shepherd ship shop
shore sister sketch soldier song speech spring square stable stadium staircase station statue
storm story stranger stream street student studio suburb summit surgeon surveyor swamp table
tailor teacher telegram telescope temple tenant terrace theatre tower town tractor trade trail
train treaty tribe tunnel university valley vessel village vineyard visitor volunteer voyage wagon
warehouse weaver wedding well wharf widow window winter workshop writer yard
""".split()

ADJECTIVES = """
abandoned able absent accurate active actual additional adequate ambitious ancient angry annual
anxious apparent artificial attractive available aware basic beautiful bitter blank blind bold
brave brief bright brilliant broad broken busy calm capable careful casual central certain cheap
chief civil classic clean clear clever cloudy coastal cold comfortable common complete complex
confident conscious constant cool correct costly crowded cruel curious current damp dark dead
decent deep definite delicate dense detailed different difficult distant domestic dramatic dry
dusty eager early eastern easy economic educational effective elaborate elderly elegant empty
enormous entire equal essential eventual evident exact excellent expensive experienced extensive
faint fair faithful familiar famous fancy fast fertile fierce final fine firm flat fond foreign
formal former fortunate fragile free frequent fresh friendly frozen full funny gentle genuine
giant glad global golden gradual grand grateful grey guilty handsome happy hard harsh heavy
helpful hidden high historic hollow honest huge humble hungry ideal idle illegal immense
important impressive independent industrial informal initial inland innocent intense internal
isolated joint junior keen kind large late lazy leading legal level liberal light likely limited
literary little lively local lonely long loose loud lovely low loyal lucky magnificent main major
massive mature medical medieval mental mild military minor mobile modern modest moral muddy
musical mutual narrow national native natural neat necessary nervous neutral new noble noisy
normal northern notable novel numerous obvious occasional odd official old open ordinary
original outer painful pale parallel patient peaceful peculiar perfect permanent personal
plain pleasant polite poor popular portable positive powerful practical precious precise pretty
previous primary private productive professional prominent proper proud public pure quick quiet
radical rapid rare raw ready real recent regional regular relevant reliable remarkable remote
rich rigid robust rough round royal rural sacred safe scarce secret secure senior separate
serious severe shallow sharp short silent silver similar simple sincere single slight slow small
smooth social soft solid southern spare special splendid stable standard steady steep stiff
strange strict strong sturdy subtle successful sudden sufficient suitable superb sweet swift
tall temporary tender terrible thick thin tidy tiny total tough tragic tropical typical ugly
unusual upper urban useful usual vacant vague valuable various vast violent visible vital vivid
warm weak wealthy weekly western wet white whole wide wild wise wooden worried young
""".split()

# (past, 3rd person present, base)
VERBS = [tuple(v.split("/")) for v in """
accepted/accepts/accept admired/admires/admire advised/advises/advise altered/alters/alter
analysed/analyses/analyse announced/announces/announce approved/approves/approve arranged/arranges/arrange
assembled/assembles/assemble assessed/assesses/assess avoided/avoids/avoid borrowed/borrows/borrow
built/builds/build calculated/calculates/calculate carried/carries/carry celebrated/celebrates/celebrate
checked/checks/check cleaned/cleans/clean collected/collects/collect compared/compares/compare
completed/completes/complete considered/considers/consider constructed/constructs/construct
copied/copies/copy covered/covers/cover created/creates/create criticised/criticises/criticise
decorated/decorates/decorate defended/defends/defend delivered/delivers/deliver described/describes/describe
designed/designs/design developed/develops/develop discovered/discovers/discover discussed/discusses/discuss
displayed/displays/display documented/documents/document donated/donates/donate drew/draws/draw
edited/edits/edit employed/employs/employ encouraged/encourages/encourage established/establishes/establish
estimated/estimates/estimate examined/examines/examine expanded/expands/expand explained/explains/explain
explored/explores/explore financed/finances/finance finished/finishes/finish found/finds/find
gathered/gathers/gather guarded/guards/guard handled/handles/handle identified/identifies/identify
illustrated/illustrates/illustrate improved/improves/improve inherited/inherits/inherit
inspected/inspects/inspect installed/installs/install introduced/introduces/introduce
investigated/investigates/investigate kept/keeps/keep launched/launches/launch led/leads/lead
located/locates/locate maintained/maintains/maintain managed/manages/manage mapped/maps/map
measured/measures/measure mended/mends/mend mentioned/mentions/mention modified/modifies/modify
moved/moves/move noticed/notices/notice observed/observes/observe obtained/obtains/obtain
opened/opens/open ordered/orders/order organised/organises/organise painted/paints/paint
photographed/photographs/photograph planned/plans/plan planted/plants/plant polished/polishes/polish
prepared/prepares/prepare preserved/preserves/preserve printed/prints/print produced/produces/produce
protected/protects/protect published/publishes/publish purchased/purchases/purchase
questioned/questions/question rebuilt/rebuilds/rebuild received/receives/receive recorded/records/record
reduced/reduces/reduce rejected/rejects/reject renovated/renovates/renovate repaired/repairs/repair
replaced/replaces/replace reported/reports/report restored/restores/restore reviewed/reviews/review
sold/sells/sell shared/shares/share shipped/ships/ship sketched/sketches/sketch sorted/sorts/sort
studied/studies/study supplied/supplies/supply supported/supports/support surveyed/surveys/survey
tested/tests/test traded/trades/trade transported/transports/transport translated/translates/translate
updated/updates/update used/uses/use valued/values/value visited/visits/visit watched/watches/watch
weighed/weighs/weigh welcomed/welcomes/welcome wrapped/wraps/wrap wrote/writes/write
""".split()]

INTRANSITIVE = [tuple(v.split("/")) for v in """
arrived/arrives/arrive complained/complains/complain continued/continues/continue declined/declines/decline
disappeared/disappears/disappear expanded/expands/expand failed/fails/fail grew/grows/grow hesitated/hesitates/hesitate
improved/improves/improve laughed/laughs/laugh left/leaves/leave paused/pauses/pause prospered/prospers/prosper
recovered/recovers/recover remained/remains/remain returned/returns/return rose/rises/rise settled/settles/settle
struggled/struggles/struggle succeeded/succeeds/succeed survived/survives/survive travelled/travels/travel
waited/waits/wait wandered/wanders/wander worked/works/work
""".split()]

ADVERBS = """
abruptly actually almost briefly calmly carefully cautiously cheerfully clearly closely
confidently constantly deliberately eagerly easily entirely especially eventually exactly
finally firmly formally frankly freely frequently fully generously gently gradually happily
honestly immediately largely mostly naturally nearly neatly nervously normally obviously
occasionally officially openly partly patiently perfectly personally politely poorly
previously privately promptly properly proudly publicly quickly quietly rapidly rarely readily
recently regularly reluctantly repeatedly roughly seriously sharply silently simply slowly
smoothly softly steadily strictly strongly suddenly surely swiftly thoroughly tightly truly
typically usually warmly widely wisely
""".split()

FIRST = """
Aaron Abigail Adrian Agnes Alan Albert Alice Amelia Andrew Anna Arthur Beatrice Benjamin Bernard
Bianca Boris Caroline Catherine Cecilia Charles Charlotte Christopher Clara Daniel David Dorothy
Edgar Edith Edward Eleanor Elena Elias Elizabeth Emil Emma Eric Esther Eva Felix Frances Francis
Frederick Gabriel George Georgia Gerald Grace Hannah Harold Harriet Helen Henry Hugo Ida Irene
Isaac Isabel Jacob James Jane Joan John Jonas Joseph Julia Karl Kate Laura Leo Leon Lillian Louis
Lucy Lydia Margaret Maria Martha Martin Matthew Michael Miriam Nathan Nora Oliver Oscar Patrick
Paul Paula Peter Philip Rachel Ralph Rebecca Richard Robert Rosa Ruth Samuel Sarah Simon Sophia
Stella Stephen Susan Theodore Thomas Ursula Victor Victoria Walter William Yusuf Zara
""".split()

LAST = """
Abbott Adler Ahmed Alvarez Andersen Bailey Baker Barnes Bauer Becker Bell Bennett Berg Brooks
Burke Campbell Carter Castillo Chen Clarke Cole Collins Cooper Costa Cruz Davies Dixon Doyle
Dubois Duncan Ellis Evans Fischer Fleming Ford Foster Fraser Garcia Gibson Gordon Graham Grant
Gray Hall Hansen Harper Hayes Hoffmann Holmes Hughes Hunt Jensen Johnson Kaur Keller Kelly
Kennedy Khan Klein Knight Kowalski Lambert Larsen Lee Lewis Lopez Marshall Martin Mason Meyer
Miller Mitchell Moreau Morris Murphy Nakamura Nielsen Novak Okafor Olsen Owen Palmer Parker
Patel Perez Peters Porter Price Quinn Reed Reyes Richter Roberts Rossi Russell Santos Schmidt
Schneider Scott Shaw Silva Simmons Singh Stewart Sullivan Tanaka Taylor Thompson Turner Vogel
Wagner Walker Wallace Ward Watson Weber Wells West Wilson Wolf Wood Wright Young Zimmermann
""".split()

PLACES = """
Aberdeen Alder Ashford Avonmore Bakersfield Barrow Beacon Bellmont Birchwood Blackwater Bramley
Bridgeport Brookfield Burnside Cardwell Carrow Castleton Cedar Chester Clearwater Coldharbour
Crestwood Dalton Deepdale Dunmore Eastwick Elmstead Fairhaven Fenwick Fernhill Foxley Glenmoor
Granton Greenhill Hadley Halstead Harrowgate Hawthorne Highfield Holloway Kingsbridge Lakeside
Langley Larkspur Linwood Marlow Meadowbank Merton Millbrook Moorfield Newbury Northwood Oakham
Oldbridge Pembrook Pinecrest Redcliff Ridgeway Rivermouth Rosedale Saltmarsh Sandford Seaton
Silverdale Southgate Stonebridge Summerfield Thornbury Timberly Underhill Wakefield Westbrook
Whitby Willowmere Winterbourne Woodstock Yarrow
""".split()

TOPIC_NOUNS = """
irrigation navigation printing weaving brewing pottery astronomy geology botany forestry fishing
mining shipbuilding masonry carpentry bookbinding cartography surveying beekeeping dairy farming
glassmaking metalwork embroidery photography telegraphy railways canals bridges lighthouses
orchards vineyards bakeries libraries schools hospitals markets museums theatres choirs newspapers
""".split()

MONTHS = "January February March April May June July August September October November December".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
OPENERS = """However Meanwhile Later Soon Eventually Afterwards Still Instead Indeed Nevertheless
Fortunately Unfortunately Surprisingly Naturally Initially Finally Consequently Similarly Moreover
Otherwise Today Yesterday Recently Previously Occasionally""".split()
CONJ = ["because", "although", "while", "since", "even though", "until", "before", "after", "once",
        "whenever", "as soon as", "so that", "unless", "just as"]
PREPS = ["near", "behind", "beside", "across", "along", "outside", "inside", "above", "below",
         "beyond", "around", "opposite", "towards", "past", "within"]
DETS = ["the", "a", "one", "that", "this", "their", "our", "its", "every", "another", "each", "some"]
MODALS = ["would", "could", "should", "might", "will", "must", "can", "may"]
QUANT = ["several", "many", "a few", "dozens of", "hundreds of", "most of the", "some of the",
         "two", "three", "four", "five", "six", "twelve", "twenty"]
EVAL = ["clear", "likely", "true", "obvious", "surprising", "remarkable", "fortunate", "strange",
        "possible", "certain", "evident", "curious", "unusual", "worth noting", "hardly surprising"]
SAY = ["said", "wrote", "explained", "noted", "recalled", "argued", "insisted", "admitted",
       "claimed", "suggested", "remarked", "observed", "reported", "added"]


def plural(n):
    if n.endswith(("s", "x", "ch", "sh")):
        return n + "es"
    if n.endswith("y") and n[-2:-1] not in "aeiou":
        return n[:-1] + "ies"
    if n.endswith("f"):
        return n[:-1] + "ves"
    return n + "s"


def fix_article(words):
    """'a' before a vowel becomes 'an', 'an' before a consonant 'a' (on a list of words)."""
    for i in range(len(words) - 1):
        w = words[i].lower()
        if w in ("a", "an"):
            nxt = words[i + 1][:1].lower()
            want = "an" if nxt in "aeiou" else "a"
            words[i] = want if words[i].islower() else want.capitalize()
    return words


class Prose:
    """A grammar that writes varied English sentences; one instance per document, with a topic."""

    def __init__(self, rng):
        self.r = rng
        # Each document leans on a few words of its own, as real documents do.
        self.topic_nouns = rng.sample(NOUNS, 6)
        self.topic_place = rng.choice(PLACES)
        self.topic_subject = rng.choice(TOPIC_NOUNS)
        self.people = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(3)]

    def c(self, items):
        return self.r.choice(items)

    def noun(self):
        return self.c(self.topic_nouns) if self.r.random() < 0.25 else self.c(NOUNS)

    def np(self, adj=0.5):
        det = self.c(DETS)
        n = self.noun()
        if self.r.random() < 0.15:
            return f"{self.c(QUANT)} {self.c(ADJECTIVES) + ' ' if self.r.random() < adj else ''}{plural(n)}"
        if self.r.random() < adj:
            return f"{det} {self.c(ADJECTIVES)} {n}"
        return f"{det} {n}"

    def person(self):
        x = self.r.random()
        if x < 0.35:
            return self.c(self.people)
        if x < 0.55:
            return self.c(self.people).split()[1 if self.r.random() < 0.5 else 0]
        if x < 0.75:
            return f"{self.c(FIRST)} {self.c(LAST)}"
        return self.np(0.4)

    def place(self):
        x = self.r.random()
        if x < 0.3:
            return self.topic_place
        if x < 0.55:
            return self.c(PLACES)
        return f"the {self.c(ADJECTIVES)} {self.noun()} of {self.c(PLACES)}"

    def when(self):
        x = self.r.randrange(8)
        if x == 0:
            return f"in {self.r.randint(1820, 2023)}"
        if x == 1:
            return f"in {self.c(MONTHS)} {self.r.randint(1850, 2023)}"
        if x == 2:
            return f"on a {self.c(['cold', 'warm', 'wet', 'quiet', 'busy', 'grey', 'bright'])} {self.c(DAYS)}"
        if x == 3:
            return f"during the {self.c(['spring', 'summer', 'autumn', 'winter', 'harvest', 'war', 'flood', 'election'])}"
        if x == 4:
            return f"{self.c(['two', 'three', 'four', 'five', 'ten', 'several', 'many'])} {self.c(['days', 'weeks', 'months', 'years', 'decades'])} later"
        if x == 5:
            return f"{self.c(['early', 'late'])} in the {self.c(['morning', 'evening', 'afternoon', 'season', 'year', 'century'])}"
        if x == 6:
            return f"by the end of the {self.c(['month', 'year', 'decade', 'season', 'week'])}"
        return f"{self.c(['after', 'before', 'during'])} the {self.c(ADJECTIVES)} {self.noun()}"

    def number_clause(self):
        x = self.r.randrange(5)
        if x == 0:
            return f"about {self.r.randint(2, 98)} percent of the {plural(self.noun())}"
        if x == 1:
            return f"{self.r.randint(3, 950)} {plural(self.noun())}"
        if x == 2:
            return f"nearly {self.r.randint(2, 90) * 100} {self.c(['people', 'visitors', 'pounds', 'dollars', 'acres', 'tonnes', 'metres'])}"
        if x == 3:
            return f"{self.r.randint(1, 9)}.{self.r.randint(1, 9)} {self.c(['kilometres', 'miles', 'million', 'hectares', 'metres'])}"
        return f"{self.c(QUANT)} {plural(self.noun())}"

    def sentence(self):
        v, v2 = self.c(VERBS), self.c(VERBS)
        iv = self.c(INTRANSITIVE)
        t = self.r.randrange(16)
        if t == 0:
            s = f"{self.person()} {v[0]} {self.np()} {self.c(PREPS)} {self.place()} {self.when()}"
        elif t == 1:
            s = f"{self.c(OPENERS)}, {self.np()} {self.c(MODALS)} {v[2]} {self.np()} {self.when()}"
        elif t == 2:
            s = (f"{self.person()} {self.c(SAY)} that {self.np(0.3)} {v[0]} {self.np()} "
                 f"{self.c(CONJ)} {self.np()} {iv[0]} {self.c(ADVERBS)}")
        elif t == 3:
            s = (f"When {self.np()} {v[0]} {self.np()} in {self.place()}, "
                 f"{self.person()} {v2[0]} {self.np()} {self.c(ADVERBS)}")
        elif t == 4:
            s = (f"{self.np()} of {self.place()} {v[1]} {self.np()} and "
                 f"{self.c(ADVERBS)} {v2[1]} {self.np()}")
        elif t == 5:
            s = f"It is {self.c(EVAL)} that {self.np()} {v[1]} {self.np()} {self.when()}"
        elif t == 6:
            s = (f"{self.person()} and {self.person()} {self.c(ADVERBS)} {v[0]} {self.np()} "
                 f"with {self.np()} from {self.place()}")
        elif t == 7:
            s = (f"Nobody knew why {self.np()} had {v[0]} {self.np()}, but {self.person()} "
                 f"{v2[0]} it {self.when()}")
        elif t == 8:
            s = (f"{self.when()}, {self.person()} {v[0]} {self.number_clause()} {self.c(PREPS)} "
                 f"{self.np()}")
        elif t == 9:
            s = (f"The history of {self.topic_subject} in {self.place()} {v[1]} how {self.np()} "
                 f"{iv[0]} {self.c(CONJ)} {self.np()} {v2[0]} {self.np()}")
        elif t == 10:
            q = f"{self.c(['We', 'They', 'I', 'You'])} {self.c(MODALS)} {v[2]} {self.np()} {self.when()}"
            s = f"\"{q},\" {self.person()} {self.c(SAY)}, {self.c(['smiling', 'frowning', 'pointing at the map', 'without looking up', 'after a pause', 'to the reporters'])}"
        elif t == 11:
            s = (f"According to {self.np()} of {self.place()}, {self.number_clause()} {iv[0]} "
                 f"{self.when()}")
        elif t == 12:
            s = (f"{self.np()} {iv[0]} {self.c(ADVERBS)}, and {self.np()} {v[0]} {self.np()} "
                 f"{self.c(PREPS)} {self.np()}")
        elif t == 13:
            s = (f"If {self.np()} {v[1]} {self.np()}, {self.np()} {self.c(MODALS)} {iv[2]} "
                 f"{self.c(CONJ)} {self.np()} {v2[1]} {self.np()}")
        elif t == 14:
            s = (f"{self.c(OPENERS)}, the {self.c(ADJECTIVES)} {plural(self.noun())} {iv[0]} "
                 f"{self.c(PREPS)} {self.place()}, {self.c(['which', 'and this', 'something that'])} "
                 f"{v[0]} {self.np()}")
        else:
            s = (f"{self.person()}, {self.c(['a', 'the'])} {self.c(ADJECTIVES)} {self.noun()} from "
                 f"{self.place()}, {v[0]} {self.np()} {self.when()}")
        words = fix_article(s.split(" "))
        s = " ".join(words)
        s = s[0].upper() + s[1:]
        end = "." if self.r.random() < 0.93 else self.c(["!", "?", "."])
        if s.endswith('"') or s.endswith(","):
            s = s.rstrip(",")
        return s + end

    def title(self):
        return " ".join(w.capitalize() if w not in ("of", "the", "and", "in") else w for w in
                        f"{self.c(ADJECTIVES)} {plural(self.noun())} and the {self.topic_subject} of {self.topic_place}".split())

    def document(self, target_words):
        paras, words = [], 0
        if self.r.random() < 0.35:
            paras.append(self.title())
        while words < target_words:
            n = self.r.randint(2, 8)
            sents = []
            for _ in range(n):
                s = self.sentence()
                sents.append(s)
                words += s.count(" ") + 1
                if words >= target_words:
                    break
            paras.append(" ".join(sents))
        return "\n\n".join(paras)


# --- PII ---------------------------------------------------------------------------------------
def luhn_complete(prefix, length, rng):
    digits = [int(d) for d in prefix] + [rng.randint(0, 9) for _ in range(length - len(prefix) - 1)]
    s = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return "".join(map(str, digits)) + str((10 - s % 10) % 10)


def public_ipv4(rng):
    while True:
        ip = ipaddress.IPv4Address(rng.getrandbits(32))
        if ip.is_global and not ip.is_multicast:
            return str(ip)


def private_ipv4(rng):
    return rng.choice([f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])


def pii_sentences(rng):
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower()
    domain = rng.choice(["example-mail.org", "post.example.net", "mailbox.example.com", "inbox.example.org"])
    out = []
    kinds = rng.sample(["email", "phone", "ipv4", "ipv4_private", "card", "email2"], rng.randint(1, 3))
    for k in kinds:
        if k == "email":
            out.append(f"For bookings, write to {first}.{last}@{domain} or ask at the front desk.")
        elif k == "email2":
            out.append(f"Questions about the archive can be sent to {first[0]}{last}{rng.randint(1, 99)}@{domain} at any time.")
        elif k == "phone":
            if rng.random() < 0.5:
                ph = f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
            else:
                ph = f"+44 20 7946 {rng.randint(1000, 9999)}"
            out.append(f"The office can be reached on {ph} during business hours.")
        elif k == "ipv4":
            out.append(f"The old catalogue server at {public_ipv4(rng)} was switched off last year.")
        elif k == "ipv4_private":
            out.append(f"Inside the building, the printer answers at {private_ipv4(rng)} on the local network.")
        else:
            card = luhn_complete(rng.choice(["4", "51", "52", "37"]), 16, rng)
            card = " ".join(card[i:i + 4] for i in range(0, 16, 4))
            out.append(f"A donor once paid by card {card}, which the clerk copied into the ledger by mistake.")
    return out


def add_pii(rng, text):
    paras = text.split("\n\n")
    for s in pii_sentences(rng):
        i = rng.randrange(len(paras))
        if paras[i].endswith((".", "!", "?")):
            paras[i] = paras[i] + " " + s
        else:
            paras.insert(i + 1, s)
    return "\n\n".join(paras)


# --- low-quality documents ---------------------------------------------------------------------
def low_quality(rng, prose):
    kind = rng.randrange(6)
    if kind == 0:  # navigation menu / link list
        items = ["Home", "About us", "Contact", "Careers", "News", "Events", "Shop", "Login", "Register",
                 "Help", "Sitemap", "Privacy", "Terms", "Blog", "Gallery", "Support", "FAQ", "Press"]
        lines = [rng.choice(items) for _ in range(rng.randint(20, 60))]
        lines.insert(rng.randrange(len(lines)), prose.sentence())
        return "\n".join(lines), "menu"
    if kind == 1:  # the same lines over and over
        base = [prose.sentence() for _ in range(rng.randint(2, 4))]
        return "\n".join(rng.choice(base) for _ in range(rng.randint(15, 40))), "repeated_lines"
    if kind == 2:  # keyword spam
        kw = [f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}" for _ in range(3)]
        words = []
        while len(words) < rng.randint(150, 400):
            words += rng.choice(kw).split() + rng.choice([["cheap"], ["best"], ["buy", "now"], ["online"], []])
        return " ".join(words) + ".", "spam"
    if kind == 3:  # code
        fn = rng.choice(["update", "render", "load", "parse", "init"])
        lines = [f"function {fn}{rng.randint(1, 99)}(x) {{"]
        for i in range(rng.randint(10, 40)):
            lines.append(f"  var v{i} = x.{rng.choice(NOUNS)}[{rng.randint(0, 9)}] + {rng.randint(0, 999)};")
        lines.append("}")
        return prose.sentence() + "\n" + "\n".join(lines), "code"
    if kind == 4:  # lorem ipsum filler inside otherwise fine text
        text = prose.document(rng.randint(120, 300))
        return text + "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.", "lorem"
    # too short
    return " ".join(prose.sentence() for _ in range(2)), "short"


# --- near copies -------------------------------------------------------------------------------
def near_copy(rng, text):
    paras = text.split("\n\n")
    kind = rng.randrange(5)
    if kind == 0:  # a few words replaced in place
        words = text.split(" ")
        for _ in range(rng.randint(1, max(1, len(words) // 60))):
            i = rng.randrange(len(words))
            if "\n" in words[i]:
                continue
            core = words[i].rstrip(".,!?\"")
            new = rng.choice(ADJECTIVES + NOUNS)
            words[i] = (new.capitalize() if core[:1].isupper() else new) + words[i][len(core):]
        return " ".join(words)
    if kind == 1 and len(paras) > 2:  # one sentence dropped
        i = rng.randrange(len(paras))
        sents = paras[i].split(". ")
        if len(sents) > 1:
            del sents[rng.randrange(len(sents))]
            paras[i] = ". ".join(sents)
        return "\n\n".join(paras)
    if kind == 2:  # a sentence or paragraph added
        prose = Prose(rng)
        add = " ".join(prose.sentence() for _ in range(rng.randint(1, 3)))
        paras.insert(rng.randint(1, len(paras)), add)
        return "\n\n".join(paras)
    if kind == 3:  # new title and a trailing note
        prose = Prose(rng)
        return prose.title() + "\n\n" + text + "\n\n" + prose.sentence()
    # punctuation and case noise (shingles ignore it: Jaccard 1.0 at word level, different bytes)
    return text.replace(", ", " , ").replace("However", "however")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True, help="JSONL file to write")
    ap.add_argument("--mb", type=float, default=50.0, help="size of the file in MB (10^6 bytes), approximately")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exact-frac", type=float, default=0.10)
    ap.add_argument("--near-frac", type=float, default=0.10)
    ap.add_argument("--pii-frac", type=float, default=0.08)
    ap.add_argument("--low-frac", type=float, default=0.06)
    ap.add_argument("--min-words", type=int, default=100)
    ap.add_argument("--max-words", type=int, default=2000)
    ap.add_argument("--stats", help="write counts per kind as JSON here")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    target = int(a.mb * 1e6)
    counts = {"base": 0, "pii": 0, "low": 0, "exact": 0, "near": 0}
    low_kinds = {}
    pending = []   # copies waiting for their position: (position, text, kind)
    written_bytes = written_docs = words_total = 0
    log_lo, log_hi = math.log(a.min_words), math.log(a.max_words)
    n = 0
    with open(a.output, "w", encoding="utf-8") as f:
        while written_bytes < target:
            # A due copy goes first; otherwise a new document (sometimes scheduling a copy of it).
            due = [p for p in pending if p[0] <= n]
            if due:
                item = min(due)
                pending.remove(item)
                text, kind = item[2], item[3]
            else:
                x = rng.random()
                prose = Prose(rng)
                if x < a.low_frac:
                    text, lk = low_quality(rng, prose)
                    kind = "low"
                    low_kinds[lk] = low_kinds.get(lk, 0) + 1
                else:
                    words = int(math.exp(rng.uniform(log_lo, log_hi)))
                    text = prose.document(words)
                    kind = "base"
                    if rng.random() < a.pii_frac:
                        text = add_pii(rng, text)
                        kind = "pii"
                # Copies: the fractions are of all documents written, so per original
                # p = frac / (1 - exact_frac - near_frac).
                share = 1.0 - a.exact_frac - a.near_frac
                if rng.random() < a.exact_frac / share:
                    pending.append((n + rng.randint(1, 400), rng.random(), text, "exact"))
                if rng.random() < a.near_frac / share:
                    pending.append((n + rng.randint(1, 400), rng.random(), near_copy(rng, text), "near"))
            counts[kind] += 1
            line = json.dumps({"id": f"doc-{n:07d}", "text": text}, ensure_ascii=False) + "\n"
            f.write(line)
            written_bytes += len(line.encode("utf-8"))
            words_total += len(text.split())
            n += 1
    stats = {"seed": a.seed, "mb_requested": a.mb, "bytes": written_bytes, "docs": n, "words": words_total,
             "kinds": counts, "low_quality_kinds": dict(sorted(low_kinds.items())),
             "generator": "bench/curate/make_corpus.py"}
    if a.stats:
        with open(a.stats, "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=1)
    print(json.dumps(stats), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
