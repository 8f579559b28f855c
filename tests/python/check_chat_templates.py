"""bellows' chat-template renderer gives exactly what jinja2 (PyPI) gives, with the environment
transformers uses for apply_chat_template (sandboxed, trim_blocks, lstrip_blocks,
raise_exception). Templates in tests/python/chat_templates/ (ChatML/Qwen2, Llama 3, Mistral,
Gemma styles and a multi-line one exercising whitespace control, namespace, tests, filters).
Conversations of every shape, with and without add_generation_prompt; templates that raise must
raise on both sides.

usage: python check_chat_templates.py RENDER_HELPER WORKDIR
"""
import glob
import json
import os
import subprocess
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def main():
    helper, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    convs = [
        [{"role": "user", "content": "Hello!"}],
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "  Hi  "}, {"role": "assistant", "content": " Hey. "}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
         {"role": "assistant", "content": "d\nwith lines\n"}],
        [{"role": "user", "content": "Grüße 数据 🙂 {{ not a tag }}"}, {"role": "assistant", "content": "ok"}],
        [{"role": "assistant", "content": "starts with assistant"}],
        [{"role": "tool", "content": "x"}],
    ]
    mismatches = cases = 0
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "chat_templates", "*.jinja"))):
        tpl_src = open(path).read()
        tpl = env.from_string(tpl_src)
        for ci, conv in enumerate(convs):
            for gen in (False, True):
                ctx = {"messages": conv, "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": gen}
                try:
                    want, want_err = tpl.render(**ctx), None
                except TemplateError as e:
                    want, want_err = None, str(e)
                cpath = os.path.join(work, "ctx.json")
                with open(cpath, "w") as f:
                    json.dump(ctx, f)
                r = subprocess.run([helper, path, cpath], capture_output=True, text=True)
                cases += 1
                name = f"{os.path.basename(path)} conversation {ci} add_generation_prompt={gen}"
                if want_err is not None:
                    if r.returncode != 1 or want_err not in r.stderr:
                        mismatches += 1
                        print(f"MISMATCH {name}: jinja2 raised {want_err!r}; ours rc={r.returncode} {r.stderr.strip()!r}")
                elif r.returncode != 0 or r.stdout != want:
                    mismatches += 1
                    print(f"MISMATCH {name}: rc={r.returncode} {r.stderr.strip()}\n  jinja2: {want!r}\n  ours:   {r.stdout!r}")
    print(f"chat templates: {cases} renderings, {mismatches} mismatches")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
