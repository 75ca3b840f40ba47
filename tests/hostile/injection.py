#!/usr/bin/python3
"""injection.py — the audit's two code-injection reproducers, built and run.

usage: injection.py NNCC WORKDIR

D1: a model file whose *path* holds `*/`, C code and `/*` (the audit's
make_path_injection.py): `nncc predict` on it once compiled that code into
P.c, P.h and P_main.c, and the program ran it (a file PWNED appeared).
D2: a CSVLogger filename starting with `??/"` (trigraph_csvlogger.yaml, from
the audit): under -std=c11 the trigraph became a backslash that ended the
string literal, and `nncc evaluate` ran the code after it (PWNED_TRIGRAPH).
Both must now build, run and exit 0 with no such file, and the text must
reach the generated C escaped (so the test fails if the input is dropped
rather than escaped).
"""
import os
import shutil
import struct
import subprocess
import sys

NNCC, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
HERE = os.path.dirname(os.path.abspath(__file__))


def write_npy(path, shape, dtype, values):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (dtype, shape)
    header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode())
        f.write(struct.pack('<%d%s' % (len(values), dtype[-2]), *values))


def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    print('$', ' '.join(repr(c) if '\n' in c else c for c in cmd), '->', r.returncode)
    print(r.stdout[-800:], r.stderr[-1500:], sep='')
    return r.returncode


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    failures = []

    # D1, as make_path_injection.py makes it
    d1 = os.path.join(WORK, 'd1')
    code = ('\n#ifndef PWN\n#define PWN\nextern int system(const char *);\n__attribute__((constructor)) static void '
            'pwned(void) { system("echo INJECTED CODE RAN > PWNED"); }\n#endif\n')
    folder = os.path.join(d1, 'p*/' + code)
    os.makedirs(folder)
    model = os.path.join(folder, '*x.yaml')
    with open(model, 'w') as f:
        f.write('name: hm\ninputs:\n  - {name: x, shape: [4]}\nlayers:\n  - Dense: {units: 3, activation: relu}\n'
                '  - Dense: {units: 2, activation: softmax}\n')
    write_npy(os.path.join(d1, 'x.npy'), '(2, 4)', '<f4', [1.0] * 8)
    rc = run([NNCC, 'predict', os.path.relpath(model, d1), '--input', 'x.npy', '--out', 'out'], d1)
    if rc != 0:
        failures.append(f'D1: nncc predict exited {rc}')
    if os.path.exists(os.path.join(d1, 'PWNED')):
        failures.append('D1: the code in the model file\'s path ran (PWNED)')
    source = os.path.join(d1, 'out', 'hm.c')
    if not os.path.exists(source) or 'p*\\/' not in open(source).read():
        failures.append('D1: hm.c does not name the model file, escaped (p*\\/...)')

    # D2
    d2 = os.path.join(WORK, 'd2')
    os.makedirs(d2)
    shutil.copy(os.path.join(HERE, 'trigraph_csvlogger.yaml'), os.path.join(d2, 'model.yaml'))
    write_npy(os.path.join(d2, 'x.npy'), '(4, 4)', '<f4', [1.0] * 16)
    write_npy(os.path.join(d2, 'y.npy'), '(4,)', '<i4', [0, 1, 0, 1])
    rc = run([NNCC, 'evaluate', 'model.yaml', '--out', 'run'], d2)
    if rc != 0:
        failures.append(f'D2: nncc evaluate exited {rc}')
    if os.path.exists(os.path.join(d2, 'PWNED_TRIGRAPH')):
        failures.append('D2: the code after ??/" in the CSVLogger filename ran (PWNED_TRIGRAPH)')
    driver = os.path.join(d2, 'run', 'hm_main.c')
    if not os.path.exists(driver) or '.filename = "\\?\\?/\\" } } };' not in open(driver).read():
        failures.append('D2: hm_main.c does not hold the filename as one escaped literal ("\\?\\?/\\" ...)')

    for f in failures:
        print('FAIL:', f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
