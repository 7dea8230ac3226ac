"""Test fixtures: a minimal MS-CFB (OLE2 compound file) writer and Zeiss/Xradia tilt series.

``olefile`` reads compound files but cannot create them, and no sample ``.txrm`` may be
downloaded, so the tests write their own. :func:`cfb_bytes` follows [MS-CFB] version 3:

* 512-byte sectors, 64-byte mini sectors, mini stream cutoff 4096 bytes: a stream smaller
  than 4096 bytes lives in the mini stream (held by the root entry, chained by the mini
  FAT), a larger one in regular sectors chained by the FAT;
* layout after the 512-byte header: large streams, the mini stream, the mini FAT, the
  directory, then the FAT sectors (marked ``FATSECT`` in the FAT itself);
* the siblings of each storage form a binary search tree ordered by (name length, upper-case
  name) and coloured as a valid red-black tree (nodes on the deepest level red);
* no DIFAT: at most 109 FAT sectors, i.e. files up to about 6.8 MB (plenty for tests).

:func:`xradia_streams` lays out the streams Zeiss/Xradia software writes (and ``txrm2tiff``
reads) with their dtypes; :func:`write_txrm` writes them to a file.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREESECT = 0xFFFFFFFF
ENDOFCHAIN = 0xFFFFFFFE
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_EMPTY, _STORAGE, _STREAM, _ROOT = 0, 1, 2, 5
_RED, _BLACK = 0, 1
_DIRENTRY = struct.Struct("<64sHBBIII16sIQQIQ")  # 128 bytes
assert _DIRENTRY.size == 128


class _Node:
    def __init__(self, name: str, kind: int, data: bytes | None = None):
        self.name = name
        self.kind = kind
        self.data = data
        self.children: dict[str, _Node] = {}
        self.sid = 0
        self.left = self.right = self.child = NOSTREAM
        self.color = _BLACK
        self.start = ENDOFCHAIN
        self.size = 0


def _key(node: _Node):
    # [MS-CFB] 2.6.4: shorter names first, then code-point order of the upper-case names
    return (len(node.name.encode("utf-16-le")), node.name.upper())


def _chunks(data: bytes, size: int) -> list[bytes]:
    pad = (-len(data)) % size
    data = data + b"\0" * pad
    return [data[i : i + size] for i in range(0, len(data), size)]


def _tree(nodes: list[_Node]) -> int:
    """Link ``nodes`` (siblings) into a balanced BST; return the root's sid."""
    nodes = sorted(nodes, key=_key)
    depths: dict[int, int] = {}

    def build(lo: int, hi: int, depth: int) -> int:
        if lo >= hi:
            return NOSTREAM
        mid = (lo + hi) // 2
        node = nodes[mid]
        depths[id(node)] = depth
        node.left = build(lo, mid, depth + 1)
        node.right = build(mid + 1, hi, depth + 1)
        return node.sid

    root = build(0, len(nodes), 0)
    # median splits put every empty link at depth d or d + 1 (d = deepest node), so colouring
    # the deepest level red gives every path the same number of black nodes
    deepest = max(depths.values(), default=0)
    for node in nodes:
        node.color = _RED if depths[id(node)] == deepest and deepest > 0 else _BLACK
    return root


def cfb_bytes(streams: Mapping[str, bytes]) -> bytes:
    """A compound file holding ``streams`` (``"Storage/Sub/Stream": bytes``)."""
    root = _Node("Root Entry", _ROOT)
    for path, data in streams.items():
        parts = path.split("/")
        node = root
        for i, part in enumerate(parts):
            if not part or len(part) > 31 or any(c in part for c in "/\\:!"):
                raise ValueError(f"invalid compound-file name {part!r} in {path!r}")
            last = i == len(parts) - 1
            if part not in node.children:
                node.children[part] = _Node(part, _STREAM if last else _STORAGE)
                if last:
                    node.children[part].data = bytes(data)
            node = node.children[part]
            if (node.kind == _STREAM) != last:
                raise ValueError(f"{path!r}: a name is used as both stream and storage")

    # directory ids: root 0, then depth first
    order: list[_Node] = []
    todo = [root]
    while todo:
        node = todo.pop(0)
        node.sid = len(order)
        order.append(node)
        todo = sorted(node.children.values(), key=_key) + todo
    for node in order:
        if node.children:
            node.child = _tree(list(node.children.values()))

    # mini stream: streams smaller than the cutoff
    mini: list[bytes] = []
    minifat: list[int] = []
    big: list[_Node] = []
    for node in order:
        if node.kind != _STREAM:
            continue
        node.size = len(node.data)
        if node.size == 0:
            node.start = ENDOFCHAIN
        elif node.size < MINI_CUTOFF:
            chunks = _chunks(node.data, MINI_SECTOR)
            node.start = len(mini)
            minifat += list(range(len(mini) + 1, len(mini) + len(chunks))) + [ENDOFCHAIN]
            mini += chunks
        else:
            big.append(node)

    sectors: list[bytes] = []
    fat: list[int] = []

    def allocate(data: bytes) -> int:
        chunks = _chunks(data, SECTOR)
        start = len(sectors)
        fat.extend(list(range(start + 1, start + len(chunks))) + [ENDOFCHAIN])
        sectors.extend(chunks)
        return start

    for node in big:
        node.start = allocate(node.data)
    if mini:
        root.start = allocate(b"".join(mini))
        root.size = len(mini) * MINI_SECTOR
        minifat_bytes = struct.pack(f"<{len(minifat)}I", *minifat)
        minifat_bytes += b"\xff" * ((-len(minifat_bytes)) % SECTOR)  # FREESECT padding
        minifat_start = allocate(minifat_bytes)
        n_minifat = len(minifat_bytes) // SECTOR
    else:
        minifat_start, n_minifat = ENDOFCHAIN, 0

    entries = []
    for node in order:
        name = node.name.encode("utf-16-le") + b"\0\0"
        size = node.size if node.kind in (_STREAM, _ROOT) else 0
        start = node.start if node.kind in (_STREAM, _ROOT) else 0
        entries.append(
            _DIRENTRY.pack(
                name,
                len(name),
                node.kind,
                node.color,
                node.left,
                node.right,
                node.child,
                b"\0" * 16,
                0,
                0,
                0,
                start,
                size,
            )
        )
    empty = _DIRENTRY.pack(
        b"", 0, _EMPTY, _RED, NOSTREAM, NOSTREAM, NOSTREAM, b"\0" * 16, 0, 0, 0, 0, 0
    )
    entries += [empty] * ((-len(entries)) % (SECTOR // 128))
    dir_start = allocate(b"".join(entries))

    # FAT sectors go last; they must also describe themselves
    n_fat = 1
    while n_fat * (SECTOR // 4) < len(sectors) + n_fat:
        n_fat += 1
    if n_fat > 109:
        raise ValueError(
            "file too large for a header-only DIFAT (about 6.8 MB); keep fixtures small"
        )
    fat_start = len(sectors)
    fat += [FATSECT] * n_fat
    fat += [FREESECT] * (n_fat * (SECTOR // 4) - len(fat))
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    sectors += _chunks(fat_bytes, SECTOR)

    difat = list(range(fat_start, fat_start + n_fat)) + [FREESECT] * (109 - n_fat)
    header = struct.pack(
        "<8s16sHHHHHHIIIIIIIIII",
        MAGIC,
        b"\0" * 16,
        0x003E,  # minor version
        0x0003,  # major version 3: 512-byte sectors
        0xFFFE,  # byte order: little-endian
        9,  # sector shift: 512
        6,  # mini sector shift: 64
        0,
        0,
        0,  # number of directory sectors: must be 0 in version 3
        n_fat,
        dir_start,
        0,  # transaction signature
        MINI_CUTOFF,
        minifat_start,
        n_minifat,
        ENDOFCHAIN,  # first DIFAT sector: none
        0,
    ) + struct.pack("<109I", *difat)
    assert len(header) == SECTOR
    return header + b"".join(sectors)


def write_cfb(path: str | Path, streams: Mapping[str, bytes]) -> Path:
    path = Path(path)
    path.write_bytes(cfb_bytes(streams))
    return path


# --------------------------------------------------------------------------- Xradia layout

#: Xradia ``XrmDataTypes`` numbers (as in txrm2tiff.xradia_properties.enums)
XRM_DTYPE = {np.dtype(np.uint16): 5, np.dtype(np.float32): 10}


def _f32(values) -> bytes:
    return np.asarray(values, dtype="<f4").ravel().tobytes()


def _i32(values) -> bytes:
    return np.asarray(values, dtype="<i4").ravel().tobytes()


def xradia_streams(
    images,
    angles_deg=None,
    *,
    pixel_um: float | None = 0.01,
    reference=None,
    version: float = 5.0,
    exposure_s: float = 1.0,
    reference_exposure_s: float | None = None,
    energy_ev: float = 520.0,
) -> dict[str, bytes]:
    """The streams of an Xradia ``.txrm`` (or, with one image, ``.xrm``) file.

    ``images`` is ``(n, rows, cols)`` uint16 or float32, stored as-is (the file's own row
    order); ``angles_deg`` one per image (``None`` leaves ``ImageInfo/Angles`` out);
    ``reference`` an optional ``(rows, cols)`` float32 flat (``ReferenceData/Image``).
    Version 5 files describe the reference in ``ReferenceData/ImageInfo/*``, version 3 in
    ``ReferenceData/ExpTime`` (and use the image's width and height).
    """
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    n, rows, cols = images.shape
    dtype = images.dtype.newbyteorder("<")
    streams: dict[str, bytes] = {
        "Version": _f32([version]),
        "ImageInfo/ImagesTaken": np.asarray([n], "<u4").tobytes(),
        "ImageInfo/NoOfImages": _i32([n]),
        "ImageInfo/ImageWidth": _i32([cols]),
        "ImageInfo/ImageHeight": _i32([rows]),
        "ImageInfo/DataType": _i32([XRM_DTYPE[np.dtype(images.dtype)]]),
        "ImageInfo/ExpTimes": _f32([exposure_s] * n),
        "ImageInfo/Energy": _f32([energy_ev] * n),
        "ImageInfo/MosiacRows": _i32([0]),
        "ImageInfo/MosiacColumns": _i32([0]),
    }
    if angles_deg is not None:
        streams["ImageInfo/Angles"] = _f32(angles_deg)
    if pixel_um is not None:
        streams["ImageInfo/PixelSize"] = _f32([pixel_um])
    for k in range(1, n + 1):
        streams[f"ImageData{(k + 99) // 100}/Image{k}"] = images[k - 1].astype(dtype).tobytes()
    if reference is not None:
        ref = np.asarray(reference, dtype="<f4")
        ref_exp = exposure_s if reference_exposure_s is None else reference_exposure_s
        streams["ReferenceData/Image"] = ref.tobytes()
        streams["ReferenceData/DataType"] = _i32([10])
        if version >= 5:
            streams["ReferenceData/ImageInfo/ImageWidth"] = _i32([ref.shape[1]])
            streams["ReferenceData/ImageInfo/ImageHeight"] = _i32([ref.shape[0]])
            streams["ReferenceData/ImageInfo/ExpTime"] = _f32([ref_exp])
        else:
            streams["ReferenceData/ExpTime"] = _f32([ref_exp])
    return streams


def write_txrm(path: str | Path, images, angles_deg=None, **kwargs) -> Path:
    """Write :func:`xradia_streams` to ``path`` (any extension)."""
    return write_cfb(path, xradia_streams(images, angles_deg, **kwargs))
