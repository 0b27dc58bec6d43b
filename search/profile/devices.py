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
from search.paths import resource
from search.schema import validate

DEVICES_DIR = Path(os.environ.get("SR_DEVICES_DIR", resource("devices")))
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


_TEXT_OR_NULL = {"type": ["string", "null"]}
# JSON schema of a profile file (search/schema.py): every key of DeviceProfile but path.
DEVICE_SCHEMA: dict = {
    "type": "object",
    "errorMessage": {"type": "expected a device profile (a mapping of keys to values), got {got}"},
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "the device's name, e.g. jetson"},
        "aliases": {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}},
        "description": {"type": "string"},
        "torch_device": {"type": "string", "minLength": 1},
        "dtype": {"enum": list(_DTYPES)},
        "output_size": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2,
                        "errorMessage": "expected [height, width] in pixels, got {got}"},
        "threads": {"type": ["integer", "null"], "minimum": 1},
        "warmup": {"type": "integer", "minimum": 0},
        "repeats": {"type": "integer", "minimum": 1},
        "ray_resource": _TEXT_OR_NULL,
        "published_column": _TEXT_OR_NULL,
        "published_unit": _TEXT_OR_NULL,
    },
}


def _profile_from_file(path: Path) -> DeviceProfile:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read device profile ({type(exc).__name__}: {' '.join(str(exc).split())})",
                        path=path) from None
    validate(data, DEVICE_SCHEMA, source=path)
    dtype = data.get("dtype", "float32")
    size = data.get("output_size", [1080, 1920])
    threads = data.get("threads", 1)
    return DeviceProfile(  # the schema checked the types: only 2.0 -> 2 is left to do
        name=str(data["name"]),
        torch_device=str(data.get("torch_device", "cpu")),
        dtype=dtype,
        output_size=(int(size[0]), int(size[1])),
        threads=None if threads is None else int(threads),
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
