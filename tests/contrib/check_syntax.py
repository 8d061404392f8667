#!/usr/bin/env python3
"""Checks the editor files in contrib/ against the compiler.

  check_syntax.py SOURCE_DIR

1. The word lists: the statement keywords and type words of frontend/lex.l,
   the constants of frontend/lower.c, the builtins of frontend/builtins.c
   (and scan) and the functions of frontend/prelude.mdl must be exactly the
   lists in contrib/vim/syntax/mdl.vim and contrib/textmate/mdl.tmLanguage.json:
   a keyword added to the lexer, or a function to the library, fails here
   until the editors know it.
2. The JSON files parse, and package.json points at the grammar.
3. Highlighting of sample.mdl: the TextMate grammar's rules applied as a
   TextMate engine does for single-line rules (earliest match wins, ties to
   the first rule), and Vim's own syntax engine when vim is installed, must
   give the expected scope or group at each probed place: contextual
   keywords (`target = y` is a name), types only after ':', calls, numbers.
Exit status 0 when all holds, 1 with a line per problem otherwise.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def table(text, name):
    """The words of a `{"word", KW_...}` table in lex.l called name."""
    m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % name, text, re.S)
    if not m:
        problem("no table %s in frontend/lex.l" % name)
        return []
    return re.findall(r'\{"(\w+)",\s*KW_\w+\}', m.group(1))


def compiler_words(src):
    lex = read(os.path.join(src, "frontend/lex.l"))
    lower = read(os.path.join(src, "frontend/lower.c"))
    builtins = read(os.path.join(src, "frontend/builtins.c"))
    prelude = read(os.path.join(src, "frontend/prelude.mdl"))
    body = lower[lower.index("static value eval_name("):]
    body = body[: body.index("\n}\n")]
    table_text = builtins[builtins.index("} builtins[] = {"):]
    return {
        "statement": table(lex, "statement_words"),
        "type": table(lex, "type_words"),
        "constant": re.findall(r'strcmp\(e->name, "(\w+)"\) == 0', body),
        "builtin": re.findall(r'\{"(\w+)", b_\w+\}', table_text) + ["scan"],
        "library": re.findall(r"^fn\s+(\w+)", prelude, re.M),
    }


def alternation(pattern, vim):
    """The list of words in the first alternation of a regex."""
    if vim:
        m = re.search(r"\\%\(((?:\w+\\\|)+\w+)\\\)", pattern)
        return m.group(1).split("\\|") if m else []
    m = re.search(r"\((?:\?:)?((?:\w+\|)+\w+)\)", pattern)
    return m.group(1).split("|") if m else []


def compare(what, where, got, want):
    if sorted(got) != sorted(want) or len(set(got)) != len(got):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        problem("%s in %s: missing %s, not in the compiler %s%s" % (
            what, where, missing, extra, ", duplicates" if len(set(got)) != len(got) else ""))


def vim_lists(path):
    text = read(path)
    def match(group):
        m = re.search(r'^syn match %s "(.*)"$' % group, text, re.M)
        if not m:
            problem("no 'syn match %s' in %s" % (group, path))
            return []
        return alternation(m.group(1), True)
    m = re.search(r"^syn keyword mdlConstant (.*)$", text, re.M)
    return {
        "statement": match("mdlStatement"),
        "definition": match("mdlDefinedName"),
        "type": match("mdlType"),
        "constant": m.group(1).split() if m else [],
        "builtin": match("mdlBuiltin"),
        "library": match("mdlLibrary"),
    }


def textmate_lists(grammar):
    rep = grammar.get("repository", {})
    def rule(name):
        if name not in rep or "match" not in rep[name]:
            problem("no rule '%s' in the TextMate grammar" % name)
            return []
        return alternation(rep[name]["match"], False)
    return {
        "statement": rule("statement-keywords"),
        "definition": rule("definitions"),
        "type": rule("types"),
        "constant": rule("constants"),
        "builtin": rule("builtins"),
        "library": rule("library"),
    }


def check_lists(src, grammar):
    want = compiler_words(src)
    for key in ("statement", "type", "constant", "builtin", "library"):
        if not want[key]:
            problem("found no %s words in the compiler's sources" % key)
    # words that name what they define: every statement keyword but these
    definers = [w for w in want["statement"] if w not in ("fn", "loss", "train")]
    vim = vim_lists(os.path.join(src, "contrib/vim/syntax/mdl.vim"))
    tm = textmate_lists(grammar)
    for where, lists in (("contrib/vim/syntax/mdl.vim", vim), ("mdl.tmLanguage.json", tm)):
        for key in ("statement", "type", "constant", "builtin", "library"):
            compare(key + " words", where, lists[key], want[key])
        compare("defining keywords", where, lists["definition"], definers)


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        problem("%s does not parse: %s" % (path, e))
        return {}


# ------------------------------------------------------------ highlighting

# (line, column (1-based), text there, TextMate scope, Vim group); "" = none
PROBES = [
    (1, 3, "a", "comment.line.number-sign.mdl", "mdlComment"),
    (2, 1, "model", "keyword.control.statement.mdl", "mdlStatement"),
    (2, 7, "m", "variable.other.definition.mdl", "mdlDefinedName"),
    (3, 1, "input", "keyword.control.statement.mdl", "mdlStatement"),
    (3, 10, "f32", "storage.type.mdl", "mdlType"),
    (3, 14, "B", "", ""),
    (4, 1, "target", "keyword.control.statement.mdl", "mdlStatement"),
    (5, 1, "target", "", ""),
    (6, 1, "loss", "", ""),
    (6, 13, "f", "variable.function.mdl", ""),
    (7, 1, "fn", "storage.type.function.mdl", "mdlStatement"),
    (7, 4, "dense2", "entity.name.function.mdl", "mdlFunctionName"),
    (7, 32, "int", "storage.type.mdl", "mdlType"),
    (8, 3, "param", "keyword.control.statement.mdl", "mdlStatement"),
    (8, 9, "W", "variable.other.definition.mdl", "mdlDefinedName"),
    (8, 28, "glorot_uniform", "", ""),
    (9, 3, "float", "support.function.builtin.mdl", "mdlBuiltin"),
    (9, 12, "@", "keyword.operator.mdl", "mdlOperator"),
    (9, 18, "1.5e-3", "constant.numeric.mdl", "mdlNumber"),
    (9, 27, "pi", "constant.language.mdl", "mdlConstant"),
    (11, 5, "relu", "support.function.builtin.mdl", "mdlBuiltin"),
    (11, 10, "dense", "support.function.library.mdl", "mdlLibrary"),
    (12, 1, "hyper", "keyword.control.statement.mdl", "mdlStatement"),
    (12, 7, "lam", "variable.other.definition.mdl", "mdlDefinedName"),
    (12, 13, ".5", "constant.numeric.mdl", "mdlNumber"),
    (13, 1, "loss", "keyword.control.statement.mdl", "mdlStatement"),
    (13, 23, "1", "", ""),
    (13, 27, "==", "keyword.operator.mdl", "mdlOperator"),
]


def textmate_scopes(grammar, line):
    """Scope of each character of a line under the grammar's top-level
    single-line rules: at each position the rule matching earliest wins
    (ties to the first listed); its captures, or its name, colour it."""
    rules = []
    for inc in grammar["patterns"]:
        r = grammar["repository"][inc["include"][1:]]
        rules.append((re.compile(r["match"]), r))
    scopes = [""] * len(line)
    pos = 0
    while pos < len(line):
        best = None
        for rx, r in rules:
            m = rx.search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[0].start()):
                best = (m, r)
        if best is None:
            break
        m, r = best
        if "name" in r:
            for i in range(m.start(), m.end()):
                scopes[i] = r["name"]
        for k, cap in r.get("captures", {}).items():
            if m.group(int(k)) is not None:
                for i in range(m.start(int(k)), m.end(int(k))):
                    scopes[i] = cap["name"]  # the innermost scope is what a theme colours
        pos = m.end()
    return scopes


def check_textmate(grammar, sample):
    lines = read(sample).split("\n")
    for line, col, text, scope, _ in PROBES:
        if lines[line - 1][col - 1: col - 1 + len(text)] != text:
            problem("sample.mdl:%d:%d is not '%s' (fix PROBES)" % (line, col, text))
            continue
        got = textmate_scopes(grammar, lines[line - 1])
        for i in range(col - 1, col - 1 + len(text)):
            if got[i] != scope:
                problem("TextMate: '%s' at %d:%d is '%s', expected '%s'" % (text, line, col, got[i], scope))
                break


def check_vim(src, sample):
    vim = shutil.which("vim")
    if not vim:
        print("note: vim is not installed; its highlighting is not checked")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "groups")
        probe = os.path.join(tmp, "probe.vim")
        with open(probe, "w") as f:
            f.write("let out = []\n")
            for line, col, text, _, _ in PROBES:
                for i in range(len(text)):
                    f.write("call add(out, synIDattr(synID(%d, %d, 1), 'name'))\n" % (line, col + i))
            f.write("call writefile(out, '%s')\nqa!\n" % out)
        cmd = [vim, "-N", "-u", "NONE", "-i", "NONE", "-es", "--cmd",
               "set rtp^=" + os.path.join(src, "contrib/vim"), "-c", "syntax on", "-c", "filetype on",
               "-c", "e " + sample, "-c", "source " + probe]
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        if not os.path.exists(out):
            problem("vim did not run the probe")
            return
        groups = read(out).split("\n")
    k = 0
    for line, col, text, _, group in PROBES:
        got = groups[k: k + len(text)]
        k += len(text)
        if any(g != group for g in got):
            problem("Vim: '%s' at %d:%d is %s, expected '%s'" % (text, line, col, got, group))


def main():
    src = sys.argv[1]
    grammar = load_json(os.path.join(src, "contrib/textmate/mdl.tmLanguage.json"))
    package = load_json(os.path.join(src, "contrib/textmate/package.json"))
    load_json(os.path.join(src, "contrib/textmate/language-configuration.json"))
    if grammar.get("scopeName") != "source.mdl":
        problem("the grammar's scopeName is not source.mdl")
    grammars = package.get("contributes", {}).get("grammars", [])
    if not any(g.get("path") == "./mdl.tmLanguage.json" and g.get("scopeName") == "source.mdl" for g in grammars):
        problem("package.json does not contribute ./mdl.tmLanguage.json as source.mdl")
    if grammar:
        check_lists(src, grammar)
        sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.mdl")
        check_textmate(grammar, sample)
        check_vim(src, sample)
    if problems:
        print("%d problem%s" % (len(problems), "" if len(problems) == 1 else "s"))
        return 1
    print("contrib/ matches the compiler: keywords, types, constants, %d functions; highlighting as expected"
          % len(compiler_words(src)["builtin"] + compiler_words(src)["library"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
