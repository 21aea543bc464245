"""MIG slice sizes: the share of its physical GPU that a MIG instance holds, by profile (pure).

A MIG instance (dcgm-exporter's `GPU_I_PROFILE`/`GPU_I_ID` labels) is charged its share of
the parent GPU's price: its fraction of the GPU's streaming multiprocessors (SMs), the
profile's leading `Ng`, as NVIDIA lists it. Compute, not memory, because the SM fraction
is what the profile reserves for one tenant and what the name's `Ng` counts: 1g.10gb holds
1/7 of an A100 80GB's SMs (and 1/8 of its memory; 1g.20gb holds 1/7 of the SMs and 2/8
of the memory, and costs the same compute).

Source: NVIDIA Multi-Instance GPU User Guide, "Supported MIG Profiles"
(https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html),
column "Fraction of SMs" of each product's table. A100 80GB, H100 80GB, H100 94GB and
H200 141GB have seven compute slices; A30 has four. The `+me` (media extensions)
variants hold the SMs of their base profile.

A configured price per profile (`cost.pricing.mig_profiles`) wins over the fraction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

SEVENTHS = {1: Fraction(1, 7), 2: Fraction(2, 7), 3: Fraction(3, 7), 4: Fraction(4, 7), 7: Fraction(1)}
QUARTERS = {1: Fraction(1, 4), 2: Fraction(2, 4), 4: Fraction(1)}


def _profiles(slices: dict[int, Fraction], *names: str) -> dict[str, Fraction]:
    out = {}
    for name in names:
        out[name] = slices[int(name.split("g.", 1)[0])]
    return out


# Product -> profile name -> fraction of the GPU's SMs (the guide's tables).
MIG_PROFILES: dict[str, dict[str, Fraction]] = {
    "A30-24GB": _profiles(QUARTERS, "1g.6gb", "1g.6gb+me", "2g.12gb", "2g.12gb+me", "4g.24gb"),
    "A100-40GB": _profiles(SEVENTHS, "1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb",
                           "7g.40gb"),
    "A100-80GB": _profiles(SEVENTHS, "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb",
                           "7g.80gb"),
    "H100-80GB": _profiles(SEVENTHS, "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb",
                           "7g.80gb"),
    "H100-94GB": _profiles(SEVENTHS, "1g.12gb", "1g.12gb+me", "1g.24gb", "2g.24gb", "3g.47gb", "4g.47gb",
                           "7g.94gb"),
    "H200-141GB": _profiles(SEVENTHS, "1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb",
                            "7g.141gb"),
}

# dcgm-exporter's `modelName` (NVML's device name) -> the guide's product. Checked in order.
_PRODUCTS = (
    (re.compile(r"\bA30\b"), "A30-24GB"),
    (re.compile(r"\bA100\b.*\b40\s*GB\b", re.I), "A100-40GB"),
    (re.compile(r"\bA100\b", re.I), "A100-80GB"),
    (re.compile(r"\bH100\b.*\b(94|96)\s*GB\b|\bH100 NVL\b", re.I), "H100-94GB"),
    (re.compile(r"\bH100\b", re.I), "H100-80GB"),
    (re.compile(r"\bH200\b", re.I), "H200-141GB"),
)
_SLICES = re.compile(r"^(\d+)g\.")


@dataclass(frozen=True)
class SliceSize:
    """A MIG instance's share of its GPU, and how that share was found."""

    fraction: float
    basis: str


def product_of(model_name: str) -> str | None:
    """The MIG guide's product for a dcgm-exporter `modelName`; None when it is not in the table."""
    for pattern, product in _PRODUCTS:
        if pattern.search(model_name):
            return product
    return None


def slice_size(model_name: str, profile: str) -> SliceSize:
    """The share of the GPU a MIG instance of `profile` holds on a GPU named `model_name`.

    From the table when the product and profile are in it; otherwise from the profile's
    `Ng` over seven compute slices (every MIG-capable data-centre GPU but the A30 has
    seven), and the basis says it was assumed.
    """
    product = product_of(model_name)
    known = MIG_PROFILES.get(product or "", {}).get(profile)
    if known is not None:
        return SliceSize(float(known), f"MIG {profile}: {known} of the GPU's SMs ({product}, NVIDIA MIG user guide)")
    found = _SLICES.match(profile)
    if found:
        slices = min(int(found.group(1)), 7)
        return SliceSize(slices / 7.0, f"MIG {profile}: assumed {slices}/7 of the GPU "
                                       f"({model_name or 'unknown GPU'} or the profile is not in the table)")
    return SliceSize(1.0, f"MIG {profile or '(no profile)'}: size unknown, charged as the whole GPU")
