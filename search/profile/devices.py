"""Device profiles: one YAML file per device in ``devices/`` (name, aliases, how to measure).

A profile says which torch device and dtype to measure with, at which HR output size, with
how many CPU threads, warm-up runs and repeats; which Ray custom resource marks a cluster
node holding the device (so profiling can be routed there); and, for the eSR paper's
devices, which column of ``published/esr_tests.csv`` holds the published speed (frames per
second at Full-HD output) that the latency predictor is fitted on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from search.errors import UserError
from search.paths import REPO_ROOT

DEVICES_DIR = Path(os.environ.get("SR_DEVICES_DIR", REPO_ROOT / "devices"))
_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    torch_device: str = "cpu"
    dtype: str = "float32"
    output_size: tuple[int, int] = (1080, 1920)
    threads: int | None = 1
    warmup: int = 2
    repeats: int = 7
    ray_resource: str | None = None
    published_column: str | None = None
    published_unit: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""
    path: Path | None = None

    @property
    def bytes_per_element(self) -> int:
        return 2 if self.dtype in ("float16", "bfloat16") else 4

    @property
    def has_predictor_data(self) -> bool:
        return self.published_column is not None


def _profile_from_file(path: Path) -> DeviceProfile:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read device profile ({type(exc).__name__}: {exc})", path=path) from None
    if not isinstance(data, dict):
        raise UserError("device profile must be a mapping of keys to values", path=path)
    known = set(DeviceProfile.__dataclass_fields__) - {"path"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})", path=path)
    if "name" not in data:
        raise UserError("device profile lacks 'name'", path=path)
    dtype = str(data.get("dtype", "float32"))
    if dtype not in _DTYPES:
        raise UserError(f"dtype must be one of {', '.join(_DTYPES)}, not {dtype!r}", path=path)
    size = data.get("output_size", [1080, 1920])
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and v > 0 for v in size)):
        raise UserError(f"output_size must be [height, width] in pixels, not {size!r}", path=path)
    for key in ("warmup", "repeats"):
        if key in data and (not isinstance(data[key], int) or data[key] < (1 if key == "repeats" else 0)):
            raise UserError(f"{key} must be a non-negative integer (repeats >= 1), not {data[key]!r}", path=path)
    threads = data.get("threads", 1)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise UserError(f"threads must be a positive integer or null, not {threads!r}", path=path)
    return DeviceProfile(
        name=str(data["name"]),
        torch_device=str(data.get("torch_device", "cpu")),
        dtype=dtype,
        output_size=(int(size[0]), int(size[1])),
        threads=threads,
        warmup=int(data.get("warmup", 2)),
        repeats=int(data.get("repeats", 7)),
        ray_resource=data.get("ray_resource"),
        published_column=data.get("published_column"),
        published_unit=data.get("published_unit"),
        aliases=tuple(str(a).lower() for a in (data.get("aliases") or ())),
        description=str(data.get("description", "")),
        path=path,
    )


def list_devices(devices_dir: Path | None = None) -> list[DeviceProfile]:
    """Every profile in ``devices/`` (sorted by name)."""
    folder = Path(devices_dir or DEVICES_DIR)
    profiles = [_profile_from_file(p) for p in sorted(folder.glob("*.yaml"))]
    return sorted(profiles, key=lambda p: p.name)


def get_device(name: str | DeviceProfile, devices_dir: Path | None = None) -> DeviceProfile:
    """The profile called ``name`` (or having it as an alias); UserError listing known ones."""
    if isinstance(name, DeviceProfile):
        return name
    wanted = str(name).strip().lower()
    profiles = list_devices(devices_dir)
    for profile in profiles:
        if wanted == profile.name.lower() or wanted in profile.aliases:
            return profile
    known = ", ".join(
        p.name + (f" ({', '.join(p.aliases)})" if p.aliases else "") for p in profiles
    )
    raise UserError(f"unknown device {name!r}; known devices: {known or 'none'} "
                    f"(profiles in {devices_dir or DEVICES_DIR})")
