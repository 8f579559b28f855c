#!/usr/bin/env bats
# curate-dedup end to end, on small corpora generated here (tests/helpers/make_corpus.py: English
# prose that passes the quality rules, with planted exact and near copies, PII and German
# documents, and a manifest saying which is which): outputs, input formats, bad input, existing
# outputs, the same result on 1, 2 and 4 ranks, and a failing rank.

setup() {
    load helpers
    CURATE=$BIN/curate-dedup
    MAKE_CORPUS=$REPO_ROOT/tests/helpers/make_corpus.py
    CHECK=$REPO_ROOT/tests/python/check_curate_output.py
    # Debian's python3 for the small JSON helpers (a pyenv shim first on PATH costs 0.1 s a call).
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3) || fail "python3 not found"
    cd "$BATS_TEST_TMPDIR" || fail "cannot cd to $BATS_TEST_TMPDIR"
}

# corpus OUT [make_corpus.py options] — a corpus and its manifest (manifest.json), fixed seed.
corpus() {
    "$PY" "$MAKE_CORPUS" --manifest manifest.json "$@" || fail "make_corpus.py $* failed"
}

# jget FILE PATH — the value at a dotted PATH of a JSON file: strings as they are, anything else
# as compact JSON (keys sorted); <missing> when the path does not exist.
jget() {
    "$PY" - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split(".") if sys.argv[2] else []:
    if isinstance(v, list) and k.isdigit() and int(k) < len(v):
        v = v[int(k)]
    elif isinstance(v, dict) and k in v:
        v = v[k]
    else:
        print("<missing>")
        sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))
PY
}

# audit OUTDIR — removed.jsonl.zst as "id<TAB>stage<TAB>reason<TAB>kept_id<TAB>source" lines.
audit() {
    zstdcat "$1/removed.jsonl.zst" | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print("\t".join(str(r.get(k, "-")) for k in ("id", "stage", "reason", "kept_id", "source")))'
}

# kept_ids OUTDIR — ids in OUTDIR/kept.jsonl.zst (--export-jsonl), in order.
kept_ids() {
    zstdcat "$1/kept.jsonl.zst" | "$PY" -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["id"])'
}

# manifest_ids KIND — "copy<TAB>original" for exact/near, ids for german (from manifest.json).
manifest_ids() {
    "$PY" - "$1" <<'PY'
import json, sys
m = json.load(open("manifest.json"))
v = m[sys.argv[1]]
for k in v:
    print(f"{k}\t{v[k]}" if isinstance(v, dict) else k)
PY
}

# assert_no_output OUT — neither OUT nor a hidden partial of it (.OUT.partial.*) exists.
assert_no_output() {
    local dir base left
    [[ ! -e $1 ]] || fail "$1 exists after a failed run: $(ls -la "$1" 2>&1)"
    dir=$(dirname "$1") base=$(basename "$1")
    left=$(compgen -G "$dir/.$base.partial.*" || true)
    [[ -z $left ]] || fail "partial output left behind: $left ($(ls -A "$left" 2>&1 | tr '\n' ' '))"
}

# assert_error_once REGEX — stderr holds exactly one line starting "curate-dedup: " (the error;
# log and progress lines start with a timestamp) and it matches REGEX.
assert_error_once() {
    local lines n
    lines=$(grep -E '^curate-dedup: ' <<<"$stderr" || true)
    n=$(grep -c . <<<"$lines" || true)
    ((n == 1)) || fail "expected one 'curate-dedup: ' line on stderr, got $n: $stderr"
    [[ $lines =~ $1 ]] || fail "error line '$lines' does not match /$1/"
}

# ---- a normal run ----------------------------------------------------------------------------

@test "happy path: verified shards, report, audit trail; every document kept or removed once, copies removed in favour of the first" {
    need_venv
    corpus corpus.jsonl --docs 40 --exact 3 --near 3 --pii 2 --german 2
    run --separate-stderr "$CURATE" corpus.jsonl -o out --export-jsonl
    assert_success
    [[ $stderr == *"curate-dedup: 48 documents in, 40 out (out)"* ]] || fail "no summary line: $stderr"
    [[ $stderr == *"progress: curate: "*"done"* ]] || fail "no progress line on a non-terminal stderr: $stderr"

    # Exactly the outputs, nothing hidden left over (work files, partial names).
    run ls -A out
    assert_output "docs-r00000-00000.h5
kept.jsonl.zst
removed.jsonl.zst
report.json"
    [[ -z $(compgen -G ".out.partial.*") ]] || fail "partial left: $(compgen -G '.out.partial.*')"

    run "$BIN/shard-inspect" --verify out/docs-r00000-00000.h5
    assert_success
    assert_output --partial "docs v1, written by curate-dedup"
    assert_output --partial "all chunks verified"
    assert_output --partial "num_docs = 40"

    assert_equal "$(jget out/report.json documents.in)" 48
    assert_equal "$(jget out/report.json documents.out)" 40
    assert_equal "$(jget out/report.json ranks)" 1
    assert_equal "$(jget out/report.json inputs.files)" 1
    assert_equal "$(jget out/report.json exact_dedup.removed)" 3
    assert_equal "$(jget out/report.json fuzzy_dedup.removed)" 3
    assert_equal "$(jget out/report.json fuzzy_dedup.clusters)" 3
    assert_equal "$(jget out/report.json stages.exact.removed)" '{"exact_dup":3}'
    assert_equal "$(jget out/report.json stages.fuzzy.removed)" '{"fuzzy_dup":3}'
    assert_equal "$(jget out/report.json stages.input.docs_in)" 48
    assert_equal "$(jget out/report.json stages.fuzzy.docs_out)" 40
    assert_equal "$(jget out/report.json languages.de)" 2
    assert_equal "$(jget out/report.json languages.en)" 46
    assert_equal "$(jget out/report.json pii.email)" 2
    assert_equal "$(jget out/report.json pii.phone)" 4

    # The audit trail, spelled out for the planted copies (the checker below does it again,
    # with everything else).
    local copy orig
    while IFS=$'\t' read -r copy orig; do
        run grep -cP "^\Q$copy\E\texact\texact_dup\t\Q$orig\E\tcorpus\.jsonl:[0-9]+$" <(audit out)
        assert_output 1
    done < <(manifest_ids exact)
    while IFS=$'\t' read -r copy orig; do
        run grep -cP "^\Q$copy\E\tfuzzy\tfuzzy_dup\t\Q$orig\E\t" <(audit out)
        assert_output 1
    done < <(manifest_ids near)
    for copy in $(manifest_ids german); do
        run grep -cP "^\Q$copy\E\tquality\t" <(audit out)
        assert_output 1
    done
    assert_equal "$(audit out | wc -l)" 8

    # Shards (read by h5py) and report against the manifest: each input document kept once or
    # listed once, copies removed with kept_id = original, PII redacted, counters consistent.
    run "$VENV/bin/python" "$CHECK" out manifest.json
    assert_success
    assert_output --partial "ok out: 40 kept, 8 removed, 3 exact_dup, 3 fuzzy_dup"
    # kept.jsonl.zst holds the same documents as the shards, in the same order.
    assert_equal "$(kept_ids out)" "$("$VENV/bin/python" "$CHECK" --kept-ids out)"
}

@test "the output checker is not vacuous: a document missing from the output is caught" {
    need_venv
    corpus corpus.jsonl --docs 12 --exact 1 --near 1 --pii 1 --german 0
    "$CURATE" corpus.jsonl -o out --progress off --log-level warn 2>/dev/null
    "$PY" - <<'PY'
import json
m = json.load(open("manifest.json"))
m["docs"].append({"id": "never-written", "kind": "base"})
json.dump(m, open("manifest.json", "w"))
PY
    run "$VENV/bin/python" "$CHECK" out manifest.json
    assert_failure
    assert_output --partial "never-written: neither kept nor in removed.jsonl.zst"
}

@test "report.json: every stage has its counters and a 'removed' object, also when nothing was removed" {
    corpus corpus.jsonl --docs 10 --exact 1 --near 0 --pii 0 --german 0
    "$CURATE" corpus.jsonl -o out --progress off --log-level warn 2>/dev/null
    run "$PY" - out/report.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for s in ("input", "cleanup", "langid", "quality", "pii", "exact", "fuzzy"):
    st = r["stages"].get(s)
    if not isinstance(st, dict):
        print(f"stages.{s} is {json.dumps(st)}")
        continue
    for k in ("docs_in", "docs_out", "bytes_in", "bytes_out", "seconds"):
        if not isinstance(st.get(k), (int, float)):
            print(f"stages.{s}.{k} is {json.dumps(st.get(k))}, expected a number")
    if not isinstance(st.get("removed"), dict):
        print(f"stages.{s}.removed is {json.dumps(st.get('removed'))}, expected an object ({{}} when empty)")
PY
    assert_success
    assert_output ""
    assert_equal "$(jget out/report.json stages.exact.removed)" '{"exact_dup":1}'
}

@test "--langs en removes the German documents at langid (lang:de); --pii-types email leaves phone numbers" {
    corpus corpus.jsonl --docs 12 --exact 0 --near 0 --pii 2 --german 2
    run --separate-stderr "$CURATE" corpus.jsonl -o out --langs en --pii-types email --export-jsonl --progress off
    assert_success
    local id
    for id in $(manifest_ids german); do
        run grep -cP "^\Q$id\E\tlangid\tlang:de\t" <(audit out)
        assert_output 1
    done
    assert_equal "$(jget out/report.json stages.langid.removed)" '{"lang:de":2}'
    assert_equal "$(jget out/report.json documents.out)" 12
    assert_equal "$(jget out/report.json pii.email)" 2
    assert_equal "$(jget out/report.json pii.phone)" 0
    run zstdcat out/kept.jsonl.zst
    assert_output --partial "<EMAIL>"
    refute_output --partial "<PHONE>"
    assert_output --regexp '\([0-9]{3}\) [0-9]{3}-[0-9]{4}'
    refute_output --partial "@example-mail.org"
}

@test "--disable exact: identical copies are then removed by fuzzy dedup, kept_id the first copy" {
    corpus corpus.jsonl --docs 12 --exact 2 --near 0 --pii 0 --german 0
    run --separate-stderr "$CURATE" corpus.jsonl -o out --disable exact --progress off
    assert_success
    local copy orig
    while IFS=$'\t' read -r copy orig; do
        run grep -cP "^\Q$copy\E\tfuzzy\tfuzzy_dup\t\Q$orig\E\t" <(audit out)
        assert_output 1
    done < <(manifest_ids exact)
    assert_equal "$(jget out/report.json documents.out)" 12
    assert_equal "$(jget out/report.json stages.exact.docs_in)" 0
}

# ---- input formats ---------------------------------------------------------------------------

@test "inputs: .jsonl, .jsonl.gz and .jsonl.zst give the same documents" {
    corpus corpus.jsonl --docs 15 --exact 1 --near 1 --pii 1 --german 1
    mkdir gz zst
    gzip -c corpus.jsonl >gz/corpus.jsonl.gz
    zstd -q corpus.jsonl -o zst/corpus.jsonl.zst
    local f
    for f in corpus.jsonl gz/corpus.jsonl.gz zst/corpus.jsonl.zst; do
        run --separate-stderr "$CURATE" "$f" -o "out-${f%%/*}" --export-jsonl --progress off
        assert_success
    done
    assert_equal "$(jget out-corpus.jsonl/report.json documents)" "$(jget out-gz/report.json documents)"
    assert_equal "$(jget out-corpus.jsonl/report.json documents)" "$(jget out-zst/report.json documents)"
    assert_equal "$(jget out-gz/report.json documents.in)" 18
    assert_equal "$(kept_ids out-corpus.jsonl)" "$(kept_ids out-gz)"
    assert_equal "$(kept_ids out-corpus.jsonl)" "$(kept_ids out-zst)"
    assert_equal "$(audit out-corpus.jsonl | cut -f1-4)" "$(audit out-zst | cut -f1-4)"
    # The audit names each record by its own file and line.
    run audit out-gz
    assert_output --regexp $'\tgz/corpus\\.jsonl\\.gz:[0-9]+$'
}

@test "inputs: a directory is searched recursively (JSONL only), globs expand, the order is by path" {
    corpus parts --files 4 --docs 20 --exact 2 --near 1 --pii 1 --german 0
    mkdir -p tree/a tree/b tree/c/deeper
    cp parts/part-000.jsonl parts/part-001.jsonl tree/a/
    cp parts/part-002.jsonl tree/b/
    zstd -q parts/part-003.jsonl -o tree/c/deeper/part-003.jsonl.zst
    echo "not an input: no JSONL suffix" >tree/b/notes.txt
    run --separate-stderr "$CURATE" tree -o out-dir --export-jsonl --progress off
    assert_success
    assert_equal "$(jget out-dir/report.json inputs.files)" 4
    run --separate-stderr "$CURATE" 'parts/part-00*.jsonl' -o out-glob --export-jsonl --progress off
    assert_success
    assert_equal "$(jget out-glob/report.json inputs.files)" 4
    assert_equal "$(jget out-glob/report.json inputs.paths)" \
        '["parts/part-000.jsonl","parts/part-001.jsonl","parts/part-002.jsonl","parts/part-003.jsonl"]'
    assert_equal "$(kept_ids out-dir)" "$(kept_ids out-glob)"
    assert_equal "$(audit out-dir | cut -f1-4)" "$(audit out-glob | cut -f1-4)"
    assert_equal "$(jget out-dir/report.json documents.in)" 23
    assert_equal "$(jget out-dir/report.json exact_dedup.removed)" 2
    assert_equal "$(jget out-dir/report.json fuzzy_dedup.removed)" 1
}

@test "inputs: --input-format text takes plain, .gz and .zst files, one document each, id = path" {
    corpus txt --format text --docs 10 --exact 1 --near 1 --pii 1 --german 1
    # Compress some of them: the originals of the planted copies, and one other document.
    local copy orig other
    read -r copy orig < <(manifest_ids exact)
    gzip "$orig"
    read -r copy orig < <(manifest_ids near)
    zstd -q --rm "$orig"
    other=$("$PY" -c '
import json
m = json.load(open("manifest.json"))
involved = set(m["exact"]) | set(m["exact"].values()) | set(m["near"]) | set(m["near"].values())
print(next(d["id"] for d in m["docs"] if d["id"] not in involved))')
    gzip "$other"
    run --separate-stderr "$CURATE" --input-format text txt -o out --export-jsonl --progress off
    assert_success
    assert_equal "$(jget out/report.json inputs.files)" 13
    assert_equal "$(jget out/report.json documents.in)" 13
    read -r copy orig < <(manifest_ids exact)
    run grep -cP "^\Q$copy\E\texact\texact_dup\t\Q$orig.gz\E\t\Q$copy\E$" <(audit out)
    assert_output 1
    read -r copy orig < <(manifest_ids near)
    run grep -cP "^\Q$copy\E\tfuzzy\tfuzzy_dup\t\Q$orig.zst\E\t" <(audit out)
    assert_output 1
    run kept_ids out
    assert_line "$other.gz"
    assert_equal "$(kept_ids out | wc -l)" "$(jget out/report.json documents.out)"
    # Without --input-format text, a directory of .txt files holds no inputs.
    run --separate-stderr "$CURATE" txt -o out2
    assert_equal "$status" 2
    assert_error_once "input directory 'txt' contains no input files.*--input-format text"
    assert_no_output out2
}

@test "inputs: an earlier run's docs shards read back give the same documents, nothing removed" {
    corpus corpus.jsonl --docs 15 --exact 1 --near 1 --pii 2 --german 0
    "$CURATE" corpus.jsonl -o first --export-jsonl --progress off --log-level warn 2>/dev/null
    run --separate-stderr "$CURATE" 'first/docs-*.h5' -o second --export-jsonl --progress off
    assert_success
    assert_equal "$(jget second/report.json inputs.files)" 1
    assert_equal "$(jget second/report.json documents.in)" "$(jget first/report.json documents.out)"
    assert_equal "$(jget second/report.json documents.out)" "$(jget first/report.json documents.out)"
    assert_equal "$(zstdcat second/removed.jsonl.zst | wc -c)" 0
    # Same ids, texts (redacted once), sources and languages.
    assert_equal "$(zstdcat second/kept.jsonl.zst | md5sum)" "$(zstdcat first/kept.jsonl.zst | md5sum)"
    run --separate-stderr "$CURATE" --input-format docs first/docs-r00000-00000.h5 -o third --progress off
    assert_success
    # The whole output directory as input: only its shards are read (not report.json, the audit
    # trail or the export).
    run --separate-stderr "$CURATE" first -o fourth --export-jsonl --progress off
    assert_success
    assert_equal "$(jget fourth/report.json inputs.files)" 1
    assert_equal "$(zstdcat fourth/kept.jsonl.zst | md5sum)" "$(zstdcat first/kept.jsonl.zst | md5sum)"
}

# ---- bad input ------------------------------------------------------------------------------

# bad_record REASON — corpus.jsonl with the line in bad.line inserted as line 4: the default
# (--on-bad-record error) stops with exit 1 naming corpus.jsonl:4 and REASON and leaves no
# output; --on-bad-record skip counts it under stages.input.removed.REASON, lists it in
# removed.jsonl.zst and accounts for every other document as usual.
bad_record() {
    local reason=$1 id
    corpus good.jsonl --docs 10 --exact 1 --near 1 --pii 1 --german 0
    { head -n 3 good.jsonl && cat bad.line && tail -n +4 good.jsonl; } >corpus.jsonl
    rm good.jsonl bad.line

    run --separate-stderr timeout 60 "$CURATE" corpus.jsonl -o out --progress off
    assert_equal "$status" 1
    assert_error_once "^curate-dedup: corpus\\.jsonl:4: $reason( |$)"
    assert_no_output out

    run --separate-stderr timeout 60 "$CURATE" corpus.jsonl -o out --progress off --on-bad-record skip
    assert_success
    assert_equal "$(jget out/report.json stages.input.removed)" "{\"$reason\":1}"
    assert_equal "$(jget out/report.json documents.in)" 13
    run grep -P $'\tinput\t'"$reason"$'\t-\tcorpus\\.jsonl:4$' <(audit out)
    assert_success
    id=$(cut -f1 <<<"$output")
    run "$VENV/bin/python" "$CHECK" out manifest.json --extra-removed "$id"
    assert_success
    # Every line's bytes are counted in, the skipped one's too (here: all of the file's bytes).
    assert_equal "$(jget out/report.json documents.bytes_in)" "$(stat -c %s corpus.jsonl)"
}

@test "bad input: a line that is not JSON" {
    need_venv
    echo '{"id": "cut-short", "text": "This line was cut off in the middle of a' >bad.line
    bad_record not_json
}

@test "bad input: a JSON value that is not an object" {
    need_venv
    echo '["a list", "is not a document"]' >bad.line
    bad_record not_a_json_object
}

@test "bad input: a record without the text field" {
    need_venv
    echo '{"id": "no-text", "body": "The text is under another key in this record."}' >bad.line
    bad_record missing_text
}

@test "bad input: a text that is not a string" {
    need_venv
    echo '{"id": "numeric", "text": 12345}' >bad.line
    bad_record text_not_a_string
}

@test "bad input: an empty document" {
    need_venv
    echo '{"id": "empty", "text": ""}' >bad.line
    bad_record empty_text
}

@test "bad input: a 100 MB line is longer than --max-doc-bytes (32 MiB)" {
    need_venv
    { printf '{"id": "huge", "text": "'; head -c 100000000 /dev/zero | tr '\0' a; printf '"}\n'; } >bad.line
    bad_record line_too_long
}

@test "bad input: an empty text file (--input-format text)" {
    corpus txt --format text --docs 4 --exact 0 --near 0 --pii 0 --german 0
    : >txt/empty.txt
    run --separate-stderr "$CURATE" --input-format text txt -o out --progress off
    assert_equal "$status" 1
    assert_error_once "^curate-dedup: txt/empty\\.txt: empty_text"
    assert_no_output out
    run --separate-stderr "$CURATE" --input-format text txt -o out --progress off --on-bad-record skip
    assert_success
    run audit out
    assert_output $'txt/empty.txt\tinput\tempty_text\t-\ttxt/empty.txt'
    assert_equal "$(jget out/report.json documents.out)" 4
}

# assert_unreadable_file_audited FILE — removed.jsonl.zst has one line for FILE, stage input, reason
# unreadable_file, saying (in the reason or its detail) where the file broke off: FILE:LINE: truncated.
assert_unreadable_file_audited() {
    run "$PY" - "$1" <<'PY'
import json, re, subprocess, sys
f = sys.argv[1]
lines = [json.loads(l) for l in subprocess.run(["zstdcat", "out/removed.jsonl.zst"], capture_output=True,
                                                 check=True, text=True).stdout.splitlines()]
mine = [r for r in lines if r.get("id") == f]
if len(mine) != 1:
    sys.exit(f"expected one line with id {f}, got {mine}")
r = mine[0]
said = r.get("reason", "") + " " + r.get("detail", "")
if r.get("stage") != "input" or not r.get("reason", "").startswith("unreadable_file") \
        or not re.search(re.escape(f) + r":[0-9]+: .*truncated", said):
    sys.exit(f"unexpected audit line: {json.dumps(r)}")
PY
    assert_success
}

@test "bad input: a truncated .jsonl.zst stops at the line where it breaks off; skip keeps what was read" {
    corpus corpus.jsonl --docs 16 --exact 1 --near 1 --pii 1 --german 0
    # Two zstd frames; the second loses its end.
    { head -n 10 corpus.jsonl | zstd -q && tail -n +11 corpus.jsonl | zstd -q; } >t.jsonl.zst
    truncate -s -200 t.jsonl.zst
    run --separate-stderr "$CURATE" t.jsonl.zst -o out --progress off
    assert_equal "$status" 1
    assert_error_once "^curate-dedup: t\\.jsonl\\.zst:[0-9]+: .*truncated"
    assert_no_output out
    run --separate-stderr "$CURATE" t.jsonl.zst -o out --progress off --on-bad-record skip
    assert_success
    assert_equal "$(jget out/report.json stages.input.removed)" '{"unreadable_file":1}'
    assert_equal "$(jget out/report.json documents.in)" 10
    assert_unreadable_file_audited t.jsonl.zst
}

@test "bad input: a truncated .jsonl.gz stops at the line where it breaks off; skip keeps what was read" {
    corpus corpus.jsonl --docs 16 --exact 1 --near 1 --pii 1 --german 0
    gzip -c corpus.jsonl >full.gz
    head -c $(($(stat -c %s full.gz) / 2)) full.gz >t.jsonl.gz
    run --separate-stderr "$CURATE" t.jsonl.gz -o out --progress off
    assert_equal "$status" 1
    assert_error_once "^curate-dedup: t\\.jsonl\\.gz:[0-9]+: .*truncated"
    assert_no_output out
    run --separate-stderr "$CURATE" t.jsonl.gz -o out --progress off --on-bad-record skip
    assert_success
    assert_equal "$(jget out/report.json stages.input.removed)" '{"unreadable_file":1}'
    local n
    n=$(jget out/report.json documents.in)
    ((n > 0 && n < 20)) || fail "documents.in = $n, expected the documents before the break"
    assert_unreadable_file_audited t.jsonl.gz
}

@test "bad input: a directory without inputs, or a missing input, is a usage error (exit 2)" {
    mkdir -p empty/sub
    echo "just notes" >empty/sub/README.txt
    run --separate-stderr "$CURATE" empty -o out
    assert_equal "$status" 2
    assert_error_once "^curate-dedup: input directory 'empty' contains no input files"
    assert_no_output out
    mkdir in
    corpus in/c.jsonl --docs 3 --exact 0 --near 0 --pii 0 --german 0
    run --separate-stderr "$CURATE" in --include 'nomatch*' -o out
    assert_equal "$status" 2
    assert_error_once "input directory 'in' contains no input files"
    assert_no_output out
    run --separate-stderr "$CURATE" nosuch.jsonl -o out
    assert_equal "$status" 2
    assert_error_once "input 'nosuch\\.jsonl' does not exist"
    assert_no_output out
}

@test "usage: a bad flag value exits 2 with one line naming the flag, before anything is written" {
    corpus corpus.jsonl --docs 3 --exact 0 --near 0 --pii 0 --german 0
    local -a cases=(
        "--shingle bogus|--shingle"
        "--shingle word:0|--shingle"
        "--threshold 2|--threshold"
        "--threshold 0|--threshold"
        "--bands 8|--bands"
        "--rows 8|--rows"
        "--bands 20 --rows 13|--bands"
        "--num-perm 0|--num-perm"
        "--disable nosuchstage|--disable"
        "--pii-types bogus|--pii-types"
        "--disable-rules bogus|--disable-rules"
        "--quality-param bogus=1|--quality-param"
        "--quality-param gopher_min_words=many|--quality-param"
        "--on-bad-record maybe|--on-bad-record"
        "--invalid-utf8 maybe|--invalid-utf8"
        "--input-format xml|--input-format"
        "--min-lang-score 1.5|--min-lang-score"
        "--max-doc-bytes 0|--max-doc-bytes"
    )
    local c args flag
    for c in "${cases[@]}"; do
        args=${c%|*} flag=${c#*|}
        # shellcheck disable=SC2086  # args are words
        run --separate-stderr "$CURATE" corpus.jsonl -o out $args
        [[ $status == 2 ]] || fail "$args: exit $status, expected 2 (stderr: $stderr)"
        [[ $(printf '%s\n' "$stderr" | wc -l) == 1 ]] || fail "$args: expected one line, got: $stderr"
        [[ $stderr == "curate-dedup: "*"$flag"* ]] || fail "$args: message does not name $flag: $stderr"
        assert_no_output out
    done
}

@test "usage: a negative number for a size or count is refused, not wrapped around" {
    corpus corpus.jsonl --docs 3 --exact 0 --near 0 --pii 0 --german 0
    local flag
    for flag in --max-doc-bytes --max-shard-bytes --seed; do
        run --separate-stderr "$CURATE" corpus.jsonl -o out "$flag" -1
        [[ $status == 2 && $stderr == *"$flag"* ]] ||
            fail "$flag -1: exit $status (expected 2 naming $flag); stderr: $stderr"
        assert_no_output out
    done
}

# ---- existing output -------------------------------------------------------------------------

@test "an existing output is refused without --overwrite (left as it was) and replaced with it" {
    corpus corpus.jsonl --docs 12 --exact 1 --near 1 --pii 0 --german 2
    "$CURATE" corpus.jsonl -o out --progress off --log-level warn 2>/dev/null
    local before
    before=$(cd out && md5sum -- *)
    run --separate-stderr "$CURATE" corpus.jsonl -o out --langs en --progress off
    assert_equal "$status" 2
    assert_error_once "^curate-dedup: output 'out' exists; pass --overwrite to replace it$"
    assert_equal "$(cd out && md5sum -- *)" "$before"
    [[ -z $(compgen -G ".out.partial.*") ]] || fail "partial left: $(compgen -G '.out.partial.*')"

    run --separate-stderr "$CURATE" corpus.jsonl -o out --langs en --overwrite --progress off
    assert_success
    assert_equal "$(jget out/report.json settings.langs)" en
    assert_equal "$(jget out/report.json stages.langid.removed)" '{"lang:de":2}'
    [[ $(cd out && md5sum -- *) != "$before" ]] || fail "output not replaced"
    run compgen -G "*out*"
    assert_output out
    run compgen -G ".out*"
    assert_output ""
}

# ---- MPI ---------------------------------------------------------------------------------------

@test "1, 2 and 4 ranks: the same kept documents, byte-identical audit trail and report counts" {
    need_venv
    corpus parts --files 6 --docs 48 --exact 4 --near 4 --pii 3 --german 2 --seed 3
    # Copies in another file than their original, so that ranks must agree across files.
    run "$PY" -c '
import json
m = json.load(open("manifest.json"))
f = {d["id"]: d["file"] for d in m["docs"]}
for k in ("exact", "near"):
    print(k, sum(f[c] != f[o] for c, o in m[k].items()))'
    assert_line --regexp '^exact [1-9]'
    assert_line --regexp '^near [1-9]'
    # And a bad record, skipped: the audit must interleave it in input order too.
    sed -i '3i this line is not JSON' parts/part-002.jsonl

    local n
    for n in 1 2 4; do
        run --separate-stderr timeout 120 "$MPIRUN" -np "$n" "$CURATE" parts -o "out-$n" \
            --export-jsonl --on-bad-record skip --progress off
        [[ $status == 0 ]] || fail "-np $n: exit $status: $stderr"
        assert_equal "$(jget "out-$n/report.json" ranks)" "$n"
    done
    assert_equal "$(compgen -G 'out-4/docs-r*.h5' | wc -l)" 4

    local ref
    ref=$("$VENV/bin/python" "$CHECK" --kept-ids out-1 | sort)
    [[ -n $ref ]] || fail "no kept ids"
    for n in 2 4; do
        assert_equal "$("$VENV/bin/python" "$CHECK" --kept-ids "out-$n" | sort)" "$ref"
        cmp <(zstdcat out-1/removed.jsonl.zst) <(zstdcat "out-$n/removed.jsonl.zst") ||
            fail "removed.jsonl.zst differs between 1 and $n ranks"
        cmp <(zstdcat out-1/kept.jsonl.zst) <(zstdcat "out-$n/kept.jsonl.zst") ||
            fail "kept.jsonl.zst differs between 1 and $n ranks"
        local part
        for part in documents exact_dedup fuzzy_dedup pii languages; do
            assert_equal "$(jget "out-$n/report.json" "$part")" "$(jget out-1/report.json "$part")"
        done
        local s
        for s in input cleanup langid quality pii exact fuzzy; do
            for part in docs_in docs_out bytes_in bytes_out removed; do
                assert_equal "$(jget "out-$n/report.json" "stages.$s.$part")" "$(jget out-1/report.json "stages.$s.$part")"
            done
        done
    done
    run "$VENV/bin/python" "$CHECK" out-4 manifest.json --extra-removed parts/part-002.jsonl:3
    assert_success
    assert_output --partial "4 exact_dup, 4 fuzzy_dup"
}

@test "a failing rank (bad record, default error mode) ends the 4-rank job: exit 1, one message, no output" {
    corpus parts --files 6 --docs 30 --exact 1 --near 1 --pii 1 --german 0
    sed -i '5s/.*/{"id": "broken", "text": 12}/' parts/part-004.jsonl # a file of rank 2 of 4
    SECONDS=0
    run --separate-stderr timeout 60 "$MPIRUN" -np 4 "$CURATE" parts -o out --progress off
    assert_equal "$status" 1
    ((SECONDS < 30)) || fail "took ${SECONDS}s"
    assert_error_once "^curate-dedup: rank [1-3]: parts/part-004\\.jsonl:5: text_not_a_string"
    assert_no_output out
}

@test "rank 0 failing works the same way" {
    corpus parts --files 6 --docs 30 --exact 1 --near 1 --pii 1 --german 0
    sed -i '2s/.*/not json/' parts/part-000.jsonl
    run --separate-stderr timeout 60 "$MPIRUN" -np 4 "$CURATE" parts -o out --progress off
    assert_equal "$status" 1
    assert_error_once "^curate-dedup: rank 0: parts/part-000\\.jsonl:2: not_json"
    assert_no_output out
}

@test "a usage error under mpirun is printed once (by rank 0), exit 2, no output" {
    corpus corpus.jsonl --docs 3 --exact 0 --near 0 --pii 0 --german 0
    run --separate-stderr timeout 60 "$MPIRUN" -np 2 "$CURATE" corpus.jsonl -o out --threshold 2
    assert_equal "$status" 2
    assert_error_once "--threshold"
    assert_no_output out
}

@test "raw invalid UTF-8 inside a JSONL text is repaired and counted, or the document dropped with --invalid-utf8 drop" {
    python3 - "$BATS_TEST_TMPDIR/inv.jsonl" <<'PY'
import sys
body = " ".join(["The committee met on Tuesday to discuss the budget for the coming year."] * 8)
with open(sys.argv[1], "wb") as f:
    f.write(b'{"id": "bad", "text": "' + body.encode() + b' caf\xe9 \xff."}\n')
    f.write(b'{"id": "good", "text": "' + body.replace("budget", "plan").encode() + b'"}\n')
PY
    run "$BIN/curate-dedup" "$BATS_TEST_TMPDIR/inv.jsonl" -o "$BATS_TEST_TMPDIR/o1" --disable quality,fuzzy --progress off --export-jsonl
    assert_success
    run python3 -c '
import json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
print(r["cleanup"]["invalid_utf8_sequences"], r["cleanup"]["docs_with_invalid_utf8"], r["documents"]["out"])' "$BATS_TEST_TMPDIR/o1"
    assert_output "2 1 2"
    run bash -c "zstdcat '$BATS_TEST_TMPDIR/o1/kept.jsonl.zst' | grep -c $'caf\uFFFD \uFFFD.'"
    assert_output 1
    run "$BIN/curate-dedup" "$BATS_TEST_TMPDIR/inv.jsonl" -o "$BATS_TEST_TMPDIR/o2" --disable quality,fuzzy --progress off --invalid-utf8 drop
    assert_success
    run bash -c "zstdcat '$BATS_TEST_TMPDIR/o2/removed.jsonl.zst'"
    assert_output --partial '"id":"bad"'
    assert_output --partial '"reason":"invalid_utf8"'
}
