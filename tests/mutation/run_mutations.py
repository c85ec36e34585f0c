"""Shows that the emulated CUDA tests bite: deliberate faults in copies of the kernels must fail them.

    python tests/mutation/run_mutations.py            # every mutation, a table of caught / MISSED
    python tests/mutation/run_mutations.py --list     # the mutations and where they apply
    python tests/mutation/run_mutations.py --only tie-local dropped-barrier-after-load

csrc/ is copied to build/cuda_mutations/csrc (the real sources are never touched); each mutation edits one
file of the copy, the emulated kernels (gramgan/ops/_emulated.py) are rebuilt from it, and the
``cuda_emulated`` tests run against them in an ASan subprocess. A mutation is described by a regular
expression that must match its file exactly ``count`` times; when the kernels change and a pattern no
longer matches, the script stops with "pattern not found" before building anything, instead of passing.
The unmutated copy is built and tested first: a failure there makes every result meaningless.
Exit status 0 when every mutation was caught. See docs/cuda-emulation.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKDIR = REPO / "build" / "cuda_mutations"
TEST_FILES = ("tests/ops/test_backends.py", "tests/ops/test_cuda_emulated.py", "tests/ops/test_sampled.py")
sys.path.insert(0, str(REPO))

from gramgan.ops import _emulated  # noqa: E402


@dataclass(frozen=True)
class Mutation:
    """Replace the ``occurrence``-th match of ``pattern`` in csrc/``path`` (which has ``count`` matches)."""

    name: str
    fault: str
    path: str
    pattern: str
    replacement: str
    occurrence: int = 0
    count: int = 1


MUTATIONS = [
    Mutation(
        "tie-local",
        "tie rule flipped in the local search (ties go to the highest index)",
        "cuda/texture_loss.cu",
        r"if \(improves\(key, best, c == 0\)\) \{",
        "if (c == 0 || key <= best) {",
    ),
    Mutation(
        "tie-global",
        "tie rule flipped in the global search",
        "cuda/texture_loss.cu",
        r"if \(improves\(key, best, m == 0\)\) \{",
        "if (m == 0 || key <= best) {",
    ),
    Mutation(
        "patch-loop-off-by-one",
        "off-by-one in the patch loop of the Gram (last row of every patch left out, stored or sampled)",
        "include/gramgan_patch.h",  # the shared per-patch Gram the CUDA kernels call (CPU build untouched)
        r"for \(int r = 0; r < K; \+\+r\) \{\n(\s*)acc_t v\[NC\];\n(\s*)pixels\.template load<NC>\(r",
        r"for (int r = 0; r < K - 1; ++r) {\n\1acc_t v[NC];\n\2pixels.template load<NC>(r",
    ),
    Mutation(
        "tie-sampled",
        "tie rule flipped in the sampled local search",
        "cuda/texture_loss_sampled.cu",
        r"if \(improves\(key, best, m == 0\)\) \{",
        "if (m == 0 || key <= best) {",
    ),
    Mutation(
        "reflection-span",
        "reflection about -0.5 and size - 1.5 instead of size - 0.5 (warps reflect one pixel short)",
        "include/gramgan_patch.h",  # the shared sampling code the CUDA kernels call (CPU build untouched)
        r"const T twice_span = static_cast<T>\(size\) \* T\(2\)",
        "const T twice_span = static_cast<T>(size - 1) * T(2)",
    ),
    Mutation(
        "retile-pixels",
        "half-size image upsampled by pixel instead of re-tiled by patch",
        "include/gramgan_patch.h",
        r"return \(\(y / K\) / 2\) \* K \+ y % K;",
        "return y / 2;",
    ),
    Mutation(
        "level-offset",
        "wrong level offset in the global scope (every level's Grams written at offset 0)",
        "cuda/texture_loss.cu",
        r"bank \+ \(b \* M \+ offset \+ q\) \* kMaxPairs",
        "bank + (b * M + q) * kMaxPairs",
    ),
    Mutation(
        "dropped-barrier-after-load",
        "dropped __syncthreads between loading a shared-memory tile and reading it",
        "cuda/texture_loss.cu",
        r"__syncthreads\(\);\n(\s*)if \(active\) \{\n(\s*)for \(int t = 0",
        r"\n\1if (active) {\n\2for (int t = 0",
    ),
    Mutation(
        "dropped-barrier-before-load",
        "dropped __syncthreads before overwriting the previous shared-memory tile",
        "cuda/texture_loss.cu",
        r"__syncthreads\(\);  // the previous tile is no longer read",
        "// (barrier dropped)",
    ),
    Mutation(
        "non-contiguous-stride",
        "wrong stride for non-contiguous input (local candidates read as if contiguous)",
        "cuda/texture_loss.cu",
        r"cand = cand_in\.contiguous\(\)",
        "cand = cand_in",
    ),
    Mutation(
        "residual-layout",
        "the backward reads the Gram residual patch-major instead of channel-pair-major (the forward's layout)",
        "cuda/texture_loss.cu",
        r"residual \+ b \* C \* C \* Hp \* Wp \+ n % \(Hp \* Wp\), Hp \* Wp, grad\[n\]",
        "residual + n * C * C, 1, grad[n]",
    ),
    Mutation(
        "out-of-bounds-read",
        "out-of-bounds read one element past the Gram bank (results unchanged: only ASan/UBSan can see it)",
        "cuda/texture_loss.cu",
        r"e < count \* kMaxPairs; e \+= blockDim\.x",
        "e <= count * kMaxPairs; e += blockDim.x",
    ),
]


def apply(mutation: Mutation, text: str) -> str:
    """``text`` with the mutation applied; ValueError ("pattern not found") when it does not match as expected."""
    matches = list(re.finditer(mutation.pattern, text))
    if len(matches) != mutation.count:
        raise ValueError(
            f"{mutation.name}: pattern not found as expected in csrc/{mutation.path}: {len(matches)} matches of "
            f"{mutation.pattern!r}, expected {mutation.count} (update the mutation to the current kernels)"
        )
    match = matches[mutation.occurrence]
    return text[: match.start()] + match.expand(mutation.replacement) + text[match.end() :]


def child_env(csrc: Path) -> dict[str, str]:
    env = _emulated.sanitizer_environment()
    env[_emulated.CSRC_ENV] = str(csrc)
    env[_emulated.BUILD_ENV] = str(WORKDIR / "build")
    return env


def build(csrc: Path) -> str | None:
    """Builds the emulated kernels from ``csrc``; None on success, else the compiler's complaint."""
    code = "from gramgan.ops import _emulated; _emulated.load()"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=child_env(csrc), capture_output=True, text=True)
    return None if result.returncode == 0 else (result.stdout + result.stderr)[-4000:]


def run_tests(csrc: Path, stop_first: bool) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--capture=sys", "-m", "cuda_emulated"]
    if stop_first:
        command.append("-x")
    result = subprocess.run([*command, *TEST_FILES], cwd=REPO, env=child_env(csrc), capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def first_failure(output: str) -> str:
    """The line of the output that says what caught the fault."""
    for marker in ("SUMMARY: AddressSanitizer", "runtime error:", "FAILED ", "ERROR "):
        for line in output.splitlines():
            if marker in line:
                return line.strip()[:150]
    return output.strip().splitlines()[-1][:150] if output.strip() else "(no output)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.only and len(chosen) != len(set(args.only)):
        parser.error(f"unknown mutation in {args.only}; known: {', '.join(m.name for m in MUTATIONS)}")
    if args.list:
        for m in chosen:
            print(f"{m.name:28} csrc/{m.path:24} {m.fault}")
        return 0

    source = REPO / "csrc"
    originals = {m.path: (source / m.path).read_text() for m in chosen}
    mutants = {m.name: apply(m, originals[m.path]) for m in chosen}  # every pattern checked before any build

    csrc = WORKDIR / "csrc"
    shutil.rmtree(csrc, ignore_errors=True)
    # Fresh modification times: ninja must rebuild everything, whatever an earlier run left in the build.
    shutil.copytree(source, csrc, copy_function=shutil.copy)
    print(f"baseline: building and testing the unmutated copy in {csrc}", flush=True)
    failure = build(csrc)
    if failure is not None:
        print(failure)
        return 2
    code, output = run_tests(csrc, stop_first=False)
    if code != 0:
        print(output[-6000:])
        print("baseline: the emulated tests fail without any mutation; fix that first")
        return 2

    rows = []
    for m in chosen:
        start = time.monotonic()
        target = csrc / m.path
        target.write_text(mutants[m.name])  # a fresh write (new mtime): ninja rebuilds what includes it
        try:
            failure = build(csrc)
            if failure is not None:
                result, detail = "BUILD FAILED", first_failure(failure)
            else:
                code, output = run_tests(csrc, stop_first=True)
                result, detail = ("caught", first_failure(output)) if code != 0 else ("MISSED", "all tests passed")
        finally:
            target.write_text(originals[m.path])
        rows.append((m, result, detail, time.monotonic() - start))
        print(f"{m.name}: {result} ({rows[-1][3]:.0f} s) {detail}", flush=True)

    print("\n| mutation | fault | file | result | first failure | s |\n|---|---|---|---|---|---|")
    for m, result, detail, seconds in rows:
        print(f"| {m.name} | {m.fault} | csrc/{m.path} | {result} | `{detail}` | {seconds:.0f} |")
    missed = [m.name for m, result, _, _ in rows if result != "caught"]
    verdict = f"; not caught: {', '.join(missed)}" if missed else ""
    print(f"\n{len(rows) - len(missed)} of {len(rows)} mutations caught{verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
