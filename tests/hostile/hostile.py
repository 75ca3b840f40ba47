#!/usr/bin/python3
"""hostile.py — hostile strings in every field of the input that reaches generated C.

usage: hostile.py NNCC CC RUNTIME_DIR WORKDIR   (RUNTIME_DIR: where nnrt.h is)

Issue 13 (D1, D2, D6, D12, D20): nncc writes names, paths, strings and
numbers from the model file and the command line into P.c, P.h and the
driver P_main.c. For every field below and every hostile string, nncc must
either refuse the input (exit 1, an "error:" message) or write C that

  - compiles with CC -std=c11 -Wall -Wextra -Werror -Wtrigraphs, and
  - lexed as a C compiler lexes it (trigraphs, line splices, comments,
    string and character literals), never has the marker HOSTILE_MARK
    as code: every hostile string carries it behind the characters that
    would end a comment or a literal.

A run that crashes, hangs (30 s), exits 2, or writes C that fails either
check is a failure. The driver is built through a stand-in $CC (written
here) that runs the strict compile and leaves a program that exits 0, so
`nncc train` is checked without training anything. Python's standard
library only.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys

NNCC, REAL_CC, RUNTIME, WORK = sys.argv[1], sys.argv[2], sys.argv[3], os.path.abspath(sys.argv[4])
STRICT = ['-std=c11', '-Wall', '-Wextra', '-Werror', '-Wtrigraphs', '-fsyntax-only']
MARK = 'HOSTILE_MARK'

# text that would end a comment or a literal, or splice a line: every field
TEXT = [
    '*/ HOSTILE_MARK(); /*',                      # ends a block comment
    '/* HOSTILE_MARK',                            # opens one (-Wcomment)
    '??/" HOSTILE_MARK(); //',                    # the trigraph backslash ends a literal
    '\\" HOSTILE_MARK(); //',                     # a backslash before the quote
    '" HOSTILE_MARK(); "',                        # a bare quote
    "' HOSTILE_MARK '",                           # a character constant's quote
    'x\nHOSTILE_MARK();\n//',                     # a newline ends a // comment
    'x\r\nHOSTILE_MARK();',                       # CR LF
    'x\\\nHOSTILE_MARK();',                       # backslash-newline splices
    'x\\',                                        # a trailing backslash splices what follows
    'x??/',                                       # ... and its trigraph
    'a*',                                         # ends where the comment's own '/' follows
    'caf\u00e9 \u202e HOSTILE_MARK',              # non-ASCII, a bidirectional override
    '%s%n%x HOSTILE_MARK',                        # format specifiers
    'a' * 1200,                                   # very long
    '1abc', 'a.b-c', '',
]
# names the C language, libc, the runtime or the generated code keep: the fields that may become identifiers
NAMES = [
    'int', 'main', 'system', 'exit', 'NAN',       # C keywords, libc and math.h names
    '__x', '_x', 'nnrt_gemm', 'glue_new',         # reserved prefixes, runtime names
    'm', 'opt', 'seed', 'B', 'arena', 'fit', 'learning_rate', 'weight_info',  # names P.c uses
    'train_dense_conv_epilogue', 'custom_act_forward', 'lstm_forward_x', 'relu_forward',
]

MODEL = '''name: {name}
custom:
  {custom}: {{activation: {{c_function: {hook}, c_gradient: hook_grad}}}}
inputs:
  - {{name: {input}, shape: [4]}}
layers:
  - Dense: {{name: {layer}, units: 3, activation: {custom}}}
  - Dense: {{name: out, units: 2, activation: softmax}}
compile: {{loss: sparse_categorical_crossentropy, optimizer: adam, metrics: [accuracy]}}
fit:
  data: {{train: {{format: npy, x: {x}, y: y.npy}}}}
  epochs: 1
  batch_size: 2
  callbacks:
    - CSVLogger: {{filename: {csv}}}
    - ModelCheckpoint: {{filepath: {ckpt}}}
    - EarlyStopping: {{monitor: {monitor}}}
'''
DEFAULTS = dict(name='hm', custom='act', hook='hook_f', input='x', layer='dense', x='x.npy', csv='log.csv',
                ckpt='ckpt.h5', monitor='val_loss')

# field -> how the string gets in: a key of MODEL, or one of the command-line ones
FIELDS = ['name', 'custom', 'hook', 'input', 'layer', 'x', 'csv', 'ckpt', 'monitor', 'prefix', 'header', 'output',
          'path']
NAME_FIELDS = {'name', 'custom', 'hook', 'input', 'layer', 'prefix'}
DRIVER_FIELDS = {'x', 'csv', 'ckpt', 'monitor', 'path'}   # reach the driver: checked through `nncc train`


def c_code(text):
    """text as the compiler's phases 1-3 see it: the code outside comments and literals (None: unterminated)."""
    trigraph = {'=': '#', '(': '[', '/': '\\', ')': ']', "'": '^', '<': '{', '!': '|', '>': '}', '-': '~'}
    text = re.sub(r"\?\?([=(/)'<!>-])", lambda m: trigraph[m.group(1)], text)
    text = text.replace('\\\n', '')
    code, i = [], 0
    while i < len(text):
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            if j < 0:
                return None
            code.append(' ')
            i = j + 2
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = len(text) if j < 0 else j
        elif text[i] in '"\'':
            q, j = text[i], i + 1
            while j < len(text) and text[j] != q:
                if text[j] == '\n':
                    return None
                j += 2 if text[j] == '\\' else 1
            if j >= len(text):
                return None
            code.append(' 0 ')
            i = j + 1
        elif text.startswith('#include', i):  # its "name" is no literal: it must hold no mark either
            j = text.find('\n', i)
            code.append(text[i:j])
            i = j
        else:
            code.append(text[i])
            i += 1
    return ''.join(code)


def check_files(files, include_dirs, compile_too):
    """'' when every file compiles strictly and has no mark as code, else why not."""
    for f in files:
        text = open(f, encoding='utf-8', errors='surrogateescape').read()
        code = c_code(text)
        if code is None:
            return f'{f}: a comment or literal does not end'
        if re.search(r'\b' + MARK + r'\b', code):
            return f'{f}: {MARK} is code'
        if compile_too and f.endswith('.c'):
            cmd = [REAL_CC] + STRICT + [f'-I{d}' for d in include_dirs] + [f]
            r = subprocess.run(cmd, capture_output=True, text=True, errors='replace')
            if r.returncode:
                return f'{f} does not compile:\n{r.stderr[:1500]}'
    return ''


def write_npy(path, rows, cols, dtype, values):
    """A .npy of float32 ('<f4') or int32 ('<i4'): no numpy needed."""
    import struct
    shape = f'({rows}, {cols})' if cols else f'({rows},)'
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (dtype, shape)
    header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode())
        f.write(struct.pack('<%d%s' % (len(values), dtype[-2]), *values))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    os.chdir(WORK)
    write_npy('x.npy', 4, 4, '<f4', [1.0] * 16)
    write_npy('y.npy', 4, 0, '<i4', [0, 1, 0, 1])
    # the stand-in C compiler nncc train builds the driver with
    strict_cc = os.path.join(WORK, 'strict_cc')
    with open(strict_cc, 'w') as f:
        f.write(f'''#!{sys.executable}
import os, subprocess, sys
args = sys.argv[1:]
incs = [a for a in args if a.startswith('-I')]
for src in [a for a in args if a.endswith('.c')]:
    if subprocess.run([{REAL_CC!r}] + {STRICT!r} + incs + ['-I' + os.path.dirname(src), src]).returncode:
        sys.exit(1)
exe = args[args.index('-o') + 1]
with open(exe, 'w') as f:
    f.write('#!/bin/sh\\nexit 0\\n')
os.chmod(exe, 0o755)
''')
    os.chmod(strict_cc, 0o755)
    include = [RUNTIME]

    jobs = []  # (label, field, command, CC or None, the folder the C lands in)
    for field in FIELDS:
        for k, s in enumerate(TEXT + (NAMES if field in NAME_FIELDS else [])):
            values = dict(DEFAULTS)
            run = os.path.join(WORK, f'{field}_{k}')
            os.makedirs(run)
            model = os.path.join(run, 'model.yaml')
            out = os.path.join(run, 'out')
            os.makedirs(out)
            args = []
            if field in values:
                values[field] = s
            elif field == 'path':
                if not s:
                    continue
                # '/' makes folders; components stay under the 255-byte limit
                rel = '/'.join(part[i:i + 200] or '_' for part in s.split('/') for i in range(0, max(len(part), 1), 200))
                model = os.path.join(run, rel + '.yaml')
                os.makedirs(os.path.dirname(model), exist_ok=True)
            elif field == 'prefix':
                args = ['--prefix', s]
            elif field == 'header':
                if not s or '/' in s or len(s) > 200:
                    continue
                args = ['--header', os.path.join(out, s)]
            elif field == 'output' and (not s or '/' in s or len(s) > 200):
                continue
            values = {key: json.dumps(v) for key, v in values.items()}
            if field != 'x':
                values['x'] = json.dumps(os.path.join(WORK, 'x.npy'))
            with open(model, 'w') as f:
                f.write(MODEL.format(**values).replace('y: y.npy', 'y: ' + json.dumps(os.path.join(WORK, 'y.npy'))))
            cfile = os.path.join(out, (s if field == 'output' else 'p') + '.c')
            if field not in DRIVER_FIELDS:
                jobs.append((f'{field} = {s!r} (nncc -o)', field, [NNCC, model, '-o', cfile] + args, None, out))
            else:
                train = os.path.join(run, 'train')
                jobs.append((f'{field} = {s!r} (nncc train)', field, [NNCC, 'train', model, '--out', train],
                             strict_cc, train))

    def one(job):
        what, field, cmd, cc, gen_dir = job
        env = dict(os.environ, CC=cc) if cc else None
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=30, env=env)
        except subprocess.TimeoutExpired:
            return field, None, f'{what}: nncc did not finish in 30 s'
        err = r.stderr.decode('utf-8', 'replace')
        if r.returncode == 1 and 'error:' in err:
            return field, 'refused', ''
        if r.returncode != 0:
            return field, None, f'{what}: exit {r.returncode}\n{err[-1500:]}'
        files = [os.path.join(dp, fn) for dp, _, fns in os.walk(gen_dir) for fn in fns if fn.endswith(('.c', '.h'))]
        if not files:
            return field, None, f'{what}: exit 0 but no C written'
        why = check_files(files, include + [gen_dir], compile_too=not cc)  # strict_cc compiled the driver's
        return field, None if why else 'compiled', f'{what}: {why}' if why else ''

    failures, counts = [], {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for field, outcome, why in pool.map(one, jobs):
            if why:
                failures.append(why)
            if outcome:
                counts[field, outcome] = counts.get((field, outcome), 0) + 1
    for field in FIELDS:
        print(f'{field:8} refused {counts.get((field, "refused"), 0):3}  compiled and clean '
              f'{counts.get((field, "compiled"), 0):3}')
    # the check has teeth: each field lets some string through to the C
    for field in FIELDS:
        if not counts.get((field, 'compiled')):
            failures.append(f'{field}: no hostile string reached the C at all (is the field still written?)')
    for f in failures:
        print('FAIL:', f)
    print(f'{len(failures)} failure(s)')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
