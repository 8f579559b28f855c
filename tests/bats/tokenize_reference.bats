#!/usr/bin/env bats
# tokenize-pack's token ids against references (issue 4): HF tokenizers (PyPI) on three byte-level
# BPE tokenizer.json flavours (GPT-2, Llama-3/cl100k with ignore_merges, Qwen2 with NFC) and
# tiktoken (PyPI) on a rank file made from the Llama-3 one, all trained offline here by
# tests/python/make_tokenizer_fixtures.py; zero mismatches on a multilingual corpus with invalid
# UTF-8, and decode(encode(x)) == x byte for byte.

setup() { load helpers; need_venv; }

FIXTURES_SCRIPT=tests/python/make_tokenizer_fixtures.py
CHECK_SCRIPT=tests/python/check_tokenizer_exact.py

# The fixtures are built once per file (the first test that needs them), in BATS_FILE_TMPDIR.
fixtures() {
    FX=$BATS_FILE_TMPDIR/fixtures
    if [[ ! -f $FX/.done ]]; then
        "$VENV/bin/python" "$REPO_ROOT/$FIXTURES_SCRIPT" "$FX" > "$BATS_FILE_TMPDIR/fixtures.log" 2>&1 \
            || fail "$FIXTURES_SCRIPT failed: $(cat "$BATS_FILE_TMPDIR/fixtures.log")"
        touch "$FX/.done"
    fi
}

# A tokenize-pack that lies: the real one's output, when it runs with option $1 (--encode or
# --decode), edited by the Python snippet $2 (on `lines`, the output's lines as bytes).
lying_tool() {
    cat > "$BATS_TEST_TMPDIR/lying-tool" <<EOF
#!/bin/bash
set -o pipefail
lie=0; for a in "\$@"; do [[ \$a == $1 ]] && lie=1; done
[[ \$lie == 1 ]] || exec "$BIN/tokenize-pack" "\$@"
"$BIN/tokenize-pack" "\$@" | "$VENV/bin/python" -c 'import json, sys
lines = sys.stdin.buffer.read().split(b"\n")
$2
sys.stdout.buffer.write(b"\n".join(lines))'
EOF
    chmod +x "$BATS_TEST_TMPDIR/lying-tool"
}

@test "reference fixtures: GPT-2, Llama-3 and Qwen2 style tokenizer.json and a tiktoken rank file, trained offline" {
    run "$VENV/bin/python" "$REPO_ROOT/$FIXTURES_SCRIPT" "$BATS_TEST_TMPDIR/fx"
    assert_success
    assert_line --regexp "^ok gpt2: .* 3000 \+ 2 added, [0-9]+ merges \(legacy 'a b' form\), ignore_merges=False, normalizer=None"
    assert_line --regexp '^ok llama3: .* 3000 \+ 3 added, [0-9]+ merges \(pair form\), ignore_merges=True, normalizer=None'
    assert_line --regexp '^ok qwen2: .* 3000 \+ 3 added, [0-9]+ merges \(pair form\), ignore_merges=False, normalizer=NFC'
    assert_line --regexp '^ok tiktoken: .*llama3.tiktoken: 2997 ranks, loads into tiktoken.Encoding .* reproduces llama3'
    assert_file_exists "$BATS_TEST_TMPDIR/fx/gpt2/tokenizer.json"
    assert_file_exists "$BATS_TEST_TMPDIR/fx/llama3/tokenizer.json"
    assert_file_exists "$BATS_TEST_TMPDIR/fx/qwen2/tokenizer.json"
    assert_file_exists "$BATS_TEST_TMPDIR/fx/llama3.tiktoken"
}

@test "tokenize-pack --encode/--decode: 0 mismatches vs HF tokenizers and tiktoken, byte-exact round trip" {
    fixtures
    run "$VENV/bin/python" "$REPO_ROOT/$CHECK_SCRIPT" "$BIN/tokenize-pack" "$FX" "$BATS_TEST_TMPDIR"
    echo "$output"  # all the lines, timings included, shown when an assertion below fails
    local c
    for c in gpt2/special gpt2/plain llama3/special llama3/plain qwen2/special qwen2/plain \
             tiktoken-cl100k/plain tiktoken-cl100k/special tiktoken-gpt2/plain tiktoken-o200k/plain tiktoken-regex/plain; do
        assert_line --regexp "^encode $c: [0-9]+ documents, 0 mismatches vs "
        assert_line --regexp "^decode $c: [0-9]+ documents, 0 mismatches \(decode\(encode\(x\)\) == x byte for byte"
    done
    assert_line --regexp '^corpus: [0-9]+ documents, .* [1-9][0-9]* with invalid UTF-8, [1-9][0-9]* with special-token strings$'
    assert_line 'check_tokenizer_exact: 11 cases, 0 mismatches in all'
    assert_success
}

@test "the exactness check is not vacuous: one changed id is caught, with its position and text" {
    fixtures
    # Document 127 is "hello<|endoftext|>world"; its first id goes up by one.
    lying_tool --encode 'ids = lines[127].split(); ids[0] = str(int(ids[0]) + 1).encode(); lines[127] = b" ".join(ids)'
    run "$VENV/bin/python" "$REPO_ROOT/$CHECK_SCRIPT" "$BATS_TEST_TMPDIR/lying-tool" "$FX" "$BATS_TEST_TMPDIR" --only llama3/special
    assert_failure
    assert_output --partial "encode llama3/special: doc 127 (23 chars 'hello<|endoftext|>world'): first difference at token 0"
    assert_line --regexp '^encode llama3/special: [0-9]+ documents, [1-9][0-9]* mismatches vs '
}

@test "the round-trip check is not vacuous: a changed decoded text is caught" {
    fixtures
    # Document 102 is "café cafe\u0301 CAFÉ CAFE\u0301" (NFC-normalized by qwen2); its decoded text gets an extra "x".
    lying_tool --decode 'd = json.loads(lines[102]); d["text"] += "x"; lines[102] = json.dumps(d).encode()'
    run "$VENV/bin/python" "$REPO_ROOT/$CHECK_SCRIPT" "$BATS_TEST_TMPDIR/lying-tool" "$FX" "$BATS_TEST_TMPDIR" --only qwen2/plain
    assert_failure
    assert_output --partial "decode qwen2/plain: doc 102: decode(encode(x)) != x (NFC)"
    assert_line --regexp '^decode qwen2/plain: [0-9]+ documents, [1-9][0-9]* mismatches '
}

@test "the tiktoken check is not vacuous: a tool that ignores --allow-special is caught" {
    fixtures
    # Run without --allow-special whatever the checker asks: the special-token strings come out as text.
    cat > "$BATS_TEST_TMPDIR/lying-tool" <<EOF
#!/bin/bash
args=(); for a in "\$@"; do [[ \$a == --allow-special ]] || args+=("\$a"); done
exec "$BIN/tokenize-pack" "\${args[@]}"
EOF
    chmod +x "$BATS_TEST_TMPDIR/lying-tool"
    run "$VENV/bin/python" "$REPO_ROOT/$CHECK_SCRIPT" "$BATS_TEST_TMPDIR/lying-tool" "$FX" "$BATS_TEST_TMPDIR" --only tiktoken-cl100k/special
    assert_failure
    assert_line --regexp '^encode tiktoken-cl100k/special: [0-9]+ documents, [1-9][0-9]* mismatches vs tiktoken'
    assert_output --partial "reference: 100257=b'<|endoftext|>'"
}

@test "SentencePiece models (BPE with byte fallback, unigram): 0 mismatches vs sentencepiece, decode too" {
    need_venv
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_sentencepiece.py" "$BIN/tokenize-pack" "$BATS_TEST_TMPDIR/sp"
    assert_success
    assert_line --regexp '^bpe: [0-9]+ documents, 0 encode mismatches, 0 decode mismatches$'
    assert_line --regexp '^unigram: [0-9]+ documents, 0 encode mismatches, 0 decode mismatches$'
}

@test "chat templates (ChatML, Llama 3, Mistral, Gemma, a multi-line one): rendered exactly as jinja2 renders them" {
    need_venv
    run "$VENV/bin/python" "$REPO_ROOT/tests/python/check_chat_templates.py" "$TESTBIN/render-chat-template" "$BATS_TEST_TMPDIR/ct"
    assert_success
    assert_line --regexp '^chat templates: [0-9]+ renderings, 0 mismatches$'
}
