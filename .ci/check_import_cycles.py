"""Fails when two files of src/ import each other, directly or through others.

Builds the file-level import graph of src/ from `use crate::…`, `use super::…`, `use self::…`,
`use child::…` and inline `crate::…` paths (comments and `mod tests` bodies ignored), finds its
strongly connected components, and prints every cycle. Exit 1 when there is one.

    python3 .ci/check_import_cycles.py [src]
"""
import os, re, sys, itertools
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3]
            mod = rel.replace(os.sep, '::')
            if mod.endswith('::mod'): mod = mod[:-5]
            files[mod] = p
def strip_tests(text):
    i = text.find('#[cfg(test)]\nmod tests')
    return text if i < 0 else text[:i]
mods = set(files)
def resolve(cur, path):
    parts = path.split('::')
    if parts[0] == 'crate': base = []; parts = parts[1:]
    elif parts[0] == 'super':
        base = cur.split('::')[:-1]
        parts = parts[1:]
        while parts and parts[0] == 'super': base = base[:-1]; parts = parts[1:]
    elif parts[0] == 'self': base = cur.split('::'); parts = parts[1:]
    else: return None
    best = None
    for n in range(len(parts), -1, -1):
        cand = '::'.join(base + parts[:n])
        if cand in mods: best = cand; break
    return best
edges = {m: set() for m in mods}
for m, p in files.items():
    if m.endswith('tests') or m.endswith('test_fixtures'): continue
    text = strip_tests(open(p).read())
    text = '\n'.join(line for line in text.split('\n') if not line.lstrip().startswith('//'))
    for path in re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', text):
        t = resolve(m, path)
        if t and t != m and 'tests' not in t:
            edges[m].add(t)
    for child in re.findall(r'\buse (\w+)::', text):
        t = m + '::' + child
        if t in mods and 'tests' not in t:
            edges[m].add(t)
    # use super::{a, b} groups
    for grp in re.findall(r'use ((?:crate|super)(?:::\w+)*)::\{([^}]*)\}', text):
        for item in grp[1].split(','):
            item = item.strip().split(' ')[0]
            if not item or item == 'self': continue
            t = resolve(m, grp[0] + '::' + item.split('::')[0])
            if t and t != m:
                edges[m].add(t)
# find cycles via SCC (Tarjan)
index = {}; low = {}; stack = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = c[0]; c[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in sorted(edges):
    if v not in index: strong(v)
for comp in sccs:
    print('cycle among:', ', '.join(sorted(comp)))
    for a in sorted(comp):
        print('  ', a, '->', ', '.join(sorted(x for x in edges[a] if x in comp)))
print(len(sccs), 'import cycles between files')
sys.exit(1 if sccs else 0)
